"""At a million events, each batch of ``runs.sweep`` finds its rows through an index: the
runs that ended by (status, updated_at), and everything under them by run id. The plans
are the database's own (EXPLAIN) for the very statements a sweep sends, taken just
before each is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import pool

import agentstore
from agentstore import AgentStore

pytestmark = pytest.mark.slow
RUNS, EVENTS_PER_RUN, BATCH = 1000, 1000, 100
# Every run gets its events from one statement: 1,000 runs x 1,000 numbers.
SEED_EVENTS = f"""
INSERT INTO events (run_id, ts, source, kind, message, payload, transaction_id)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS_PER_RUN})
SELECT runs.id, runs.created_at, 'w', 'note', 'm', '{{}}', 0 FROM runs, n
"""


@pytest.fixture
def seeded(db_url: str, dialect: str) -> Iterator[tuple[AgentStore, str]]:
    """A store with 1,000 runs (a tenth of them ended) and a million events."""
    with AgentStore.open(db_url) as store:
        for n in range(RUNS):
            store.runs.create("g", "/r", "completed" if n % 10 == 0 else "running")
        with store.engine.begin() as connection:
            connection.exec_driver_sql(SEED_EVENTS)
            connection.exec_driver_sql("ANALYZE")
        yield store, dialect


def plans_of_one_sweep(store: AgentStore, dialect: str) -> dict[str, str]:
    """The plan of each statement the sweep sends, by the table it reads or deletes
    from, explained on a connection of its own just before the statement is sent."""
    explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    explainer = agentstore.create_engine(store.engine.url, poolclass=pool.NullPool)
    plans: dict[str, str] = {}

    def explained(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        words = statement.split()
        if not words or words[0].upper() not in ("SELECT", "DELETE", "WITH"):
            return
        table = words[words.index("FROM") + 1] if "FROM" in words else "?"
        with explainer.connect() as connection:  # a reader: it waits for no lock
            connection.execution_options(**store.backend.read_only_options)
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
        plans.setdefault(table, "\n".join(" ".join(map(str, row)) for row in rows))

    ended_events = sa.text(
        "SELECT count(*) FROM events JOIN runs ON runs.id = events.run_id"
        " WHERE runs.status = 'completed'"
    )
    with store.engine.connect() as connection:
        expected = connection.execute(ended_events).scalar_one()
    assert expected >= RUNS // 10 * EVENTS_PER_RUN
    sa.event.listen(store.engine, "before_cursor_execute", explained)
    try:
        counts = store.runs.sweep(timedelta(0), batch_size=BATCH)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", explained)
        explainer.dispose()
    assert (counts.runs, counts.events) == (RUNS // 10, expected)
    return plans


def test_each_batch_of_a_sweep_finds_its_rows_through_an_index(
    seeded: tuple[AgentStore, str],
) -> None:
    store, dialect = seeded
    plans = plans_of_one_sweep(store, dialect)
    assert {"runs", "events", "tasks", "task_attempts"} <= set(plans)
    # The runs that ended: through an index on their status (and when they changed).
    assert "ix_runs_status_" in plans["runs"], plans["runs"]
    # What is under them, the events above all: through the run id's index.
    assert "ix_events_run_id_" in plans["events"], plans["events"]
    full_scan = "SCAN events\n" if dialect == "sqlite" else "Seq Scan on events"
    assert full_scan not in plans["events"] + "\n"
