"""At a million events, each batch of ``runs.sweep``, ``events.prune`` and
``checkpoints.prune`` finds its rows through an index: the runs that ended by (status,
updated_at), what is under a run by its run id, a journal's old rows by their age. The
plans are the database's own (EXPLAIN) for the very statements each sends, taken just
before each is sent.

One seeded database per dialect serves the module (seeding takes most of the time):
every test counts what it expects from the database as it finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import pool

import agentstore
from agentstore import AgentStore
from tests.support.databases import DIALECTS
from tests.support.plans import NEW_ID

pytestmark = pytest.mark.slow
RUNS, EVENTS_PER_RUN, CHECKPOINTS_PER_RUN, BATCH = 1000, 1000, 10, 100
# Every run gets its events from one statement: 1,000 runs x 1,000 numbers.
SEED_EVENTS = f"""
INSERT INTO events (run_id, ts, source, kind, message, payload, transaction_id)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS_PER_RUN})
SELECT runs.id, runs.created_at, 'w', 'note', 'm', '{{}}', 0 FROM runs, n
"""
SEED_CHECKPOINTS = f"""
INSERT INTO checkpoints (id, run_id, status, payload, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CHECKPOINTS_PER_RUN})
SELECT {{new_id}}, runs.id, 'running', '{{{{}}}}', runs.created_at FROM runs, n
"""
# What makes the seed quicker: SQLite's page cache large enough for the indexes being
# written (28 s to 10 s here); on PostgreSQL no foreign-key check per row, for the
# seed's transaction (the rows are seeded under runs that exist).
SEED_SETTINGS = {
    "sqlite": "PRAGMA cache_size = -262144",
    "postgresql": "SET LOCAL session_replication_role = replica",
}


@pytest.fixture(scope="module", params=DIALECTS)
def seeded(request: pytest.FixtureRequest) -> Iterator[tuple[AgentStore, str]]:
    """A store with 1,000 runs (a tenth of them ended), a million events and 10,000
    checkpoints."""
    dialect = str(request.param)
    databases = request.getfixturevalue(f"{dialect}_databases")
    url = databases.migrated()
    with AgentStore.open(url) as store:
        for n in range(RUNS):
            store.runs.create("g", "/r", "completed" if n % 10 == 0 else "running")
        with store.engine.begin() as connection:
            connection.exec_driver_sql(SEED_SETTINGS[dialect])
            connection.exec_driver_sql(SEED_EVENTS)
            connection.exec_driver_sql(SEED_CHECKPOINTS.format(new_id=NEW_ID[dialect]))
            connection.exec_driver_sql("ANALYZE")
        yield store, dialect
    databases.drop(url)


def plans_of(store: AgentStore, dialect: str, call: Callable[[], Any]) -> dict[str, str]:
    """The plan of each statement ``call`` sends, by its verb and the table it reads or
    deletes from ("DELETE events"), explained on a connection of its own just before the
    statement is sent."""
    explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    explainer = agentstore.create_engine(store.engine.url, poolclass=pool.NullPool)
    plans: dict[str, str] = {}

    def explained(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        words = statement.split()
        if not words or words[0].upper() not in ("SELECT", "DELETE", "WITH"):
            return
        table = words[words.index("FROM") + 1] if "FROM" in words else "?"
        verb = "DELETE" if words[0].upper() == "DELETE" else "SELECT"
        key = f"{verb} {table}"
        if key in plans:  # the first batch's plan is the one kept
            return
        with explainer.connect() as connection:  # a reader: it waits for no lock
            connection.execution_options(**store.backend.read_only_options)
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
        plans[key] = "\n".join(" ".join(map(str, row)) for row in rows)

    sa.event.listen(store.engine, "before_cursor_execute", explained)
    try:
        call()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", explained)
        explainer.dispose()
    return plans


def count(store: AgentStore, query: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.exec_driver_sql(query).scalar_one())


def no_full_scan(plan: str, table: str, dialect: str) -> bool:
    full_scan = f"SCAN {table}\n" if dialect == "sqlite" else f"Seq Scan on {table}"
    return full_scan not in plan + "\n"


def test_each_batch_of_a_sweep_finds_its_rows_through_an_index(
    seeded: tuple[AgentStore, str],
) -> None:
    store, dialect = seeded
    expected = count(
        store,
        "SELECT count(*) FROM events JOIN runs ON runs.id = events.run_id"
        " WHERE runs.status = 'completed'",
    )
    assert expected >= RUNS // 10 * (EVENTS_PER_RUN - 10)
    swept: list[Any] = []
    plans = plans_of(
        store, dialect, lambda: swept.append(store.runs.sweep(timedelta(0), batch_size=BATCH))
    )
    assert (swept[0].runs, swept[0].events) == (RUNS // 10, expected)
    assert {"SELECT runs", "DELETE events", "DELETE tasks", "DELETE task_attempts"} <= set(plans), (
        plans
    )
    # The runs that ended: through an index on their status (and when they changed).
    assert "ix_runs_status_" in plans["SELECT runs"], plans["SELECT runs"]
    # What is under them, the events above all: through the run id's index.
    assert "ix_events_run_id_" in plans["DELETE events"], plans["DELETE events"]
    assert no_full_scan(plans["DELETE events"], "events", dialect)


def test_keeping_the_latest_events_of_every_run_finds_each_batch_through_an_index(
    seeded: tuple[AgentStore, str],
) -> None:
    store, dialect = seeded
    keep = EVENTS_PER_RUN - 10
    expected = store.events.prunable(keep_latest=keep)
    assert expected >= (RUNS - RUNS // 10) * 10  # at least the live runs' ten oldest
    pruned: list[int] = []
    plans = plans_of(store, dialect, lambda: pruned.append(store.events.prune(keep_latest=keep)))
    assert pruned == [expected]
    assert store.events.prunable(keep_latest=keep) == 0
    # The runs with too many events, a run's newest event not kept, and the events up
    # to it: each looked up by an index on the run id.
    for key in ("SELECT runs", "SELECT events", "DELETE events"):
        assert "ix_events_run_id_" in plans[key], plans[key]
        assert no_full_scan(plans[key], "events", dialect)


def test_pruning_events_by_age_finds_each_batch_through_an_index(
    seeded: tuple[AgentStore, str],
) -> None:
    store, dialect = seeded
    # The events of the oldest tenth of the runs that are left (each run's events are
    # as old as the run).
    tenth = count(store, "SELECT count(*) / 10 FROM runs")
    cutoff = store.runs.list(limit=1000).items[-tenth].created_at
    expected = store.events.prunable(older_than=cutoff)
    assert expected > 0
    pruned: list[int] = []
    plans = plans_of(store, dialect, lambda: pruned.append(store.events.prune(older_than=cutoff)))
    assert pruned == [expected]
    assert "ix_events_ts" in plans["DELETE events"], plans["DELETE events"]
    assert no_full_scan(plans["DELETE events"], "events", dialect)


def test_pruning_checkpoints_finds_each_batch_through_an_index(
    seeded: tuple[AgentStore, str],
) -> None:
    store, dialect = seeded
    kept = store.checkpoints.prunable(keep_latest=CHECKPOINTS_PER_RUN - 2)
    by_count = plans_of(
        store, dialect, lambda: store.checkpoints.prune(keep_latest=CHECKPOINTS_PER_RUN - 2)
    )
    assert kept > 0 and store.checkpoints.prunable(keep_latest=CHECKPOINTS_PER_RUN - 2) == 0
    by_age = plans_of(store, dialect, lambda: store.checkpoints.prune(older_than=timedelta(0)))
    assert count(store, "SELECT count(*) FROM checkpoints") == 0
    for key in ("SELECT checkpoints", "DELETE checkpoints"):
        assert "ix_checkpoints_run_id_created_at" in by_count[key], by_count[key]
    # The old ones by their age's index. (Deleting a thousand of a few thousand rows,
    # PostgreSQL may then rightly hash them against one pass over the table.)
    assert "ix_checkpoints_created_at" in by_age["DELETE checkpoints"], by_age
