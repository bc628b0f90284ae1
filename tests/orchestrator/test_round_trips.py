"""A worker's steps cost one round trip each on PostgreSQL: one statement, run in
autocommit, with no BEGIN or COMMIT around it. Counted from what the client sends
(libpq's trace of every pooled connection: each Sync or simple Query waits for the
server's answer), on both faces."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, Completion, RunRecord, TaskDraft
from agentstore.orchestrator.task_steps import steps

MESSAGE = re.compile(r"^[^\t]+\tF\t\d+\t(\w+)")
pytestmark = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)


@contextmanager
def traced(store: AgentStore, path: Path) -> Iterator[Callable[[], list[str]]]:
    """Trace every connection the store's calls check out; yields a function giving the
    messages the client sent since the last time it was called."""
    engine = getattr(store, "calls_engine", store.engine)
    engine.dispose()  # connections from now on are checked out under the trace
    trace = path.open("w")
    seen = 0

    def on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.driver_connection.pgconn.trace(trace.fileno())

    def on_checkin(_dbapi: Any, record: Any) -> None:
        record.driver_connection.pgconn.untrace()

    def sent() -> list[str]:
        nonlocal seen
        trace.flush()
        lines = path.read_text().splitlines()[seen:]
        seen += len(lines)
        # A message's line: time, direction, length, type (its SQL may run on over lines).
        return [m[1] for m in map(MESSAGE.match, lines) if m is not None]

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "checkin", on_checkin)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "checkin", on_checkin)
        trace.close()
        os.remove(path)


def round_trips(messages: list[str]) -> int:
    return sum(1 for message in messages if message in ("Sync", "Query"))


def test_a_workers_steps_are_one_round_trip_each(
    store: AgentStore, run: RunRecord, tmp_path: Path
) -> None:
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(4)])
    with traced(store, tmp_path / "trace") as sent:
        [task] = store.tasks.claim_next("w", run_id=run.id)
        assert round_trips(sent()) == 1
        store.tasks.heartbeat(task.id, 1, timedelta(minutes=5))
        assert round_trips(sent()) == 1
        handoff = store.tasks.complete_and_claim(
            task.id, "done", attempt=1, worker="w", run_id=run.id
        )
        assert round_trips(sent()) == 1
        [task] = handoff.claimed
        store.tasks.complete(task.id, "done", attempt=1)
        assert round_trips(sent()) == 1
        # A call in a transaction of its own sends BEGIN and COMMIT too: the trace sees
        # them (the counts above are not blind to them).
        store.runs.get(run.id)
        assert round_trips(sent()) == 3


def test_a_batch_of_completions_and_the_next_claim_are_one_statement(
    store: AgentStore, run: RunRecord, tmp_path: Path
) -> None:
    # complete_many runs in a transaction (a refused completion undoes the whole batch):
    # BEGIN, the one statement, COMMIT, whatever the size of the batch.
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(20)])
    held = store.tasks.claim_next("w", run_id=run.id, limit=10)
    with traced(store, tmp_path / "trace") as sent:
        batch = [Completion(task.id, "done", task.attempt) for task in held]
        handoff = store.tasks.complete_many(batch, worker="w", run_id=run.id, limit=10)
        assert round_trips(sent()) == 3
    assert len(handoff.completed) == len(handoff.claimed) == 10


def test_the_steps_stay_short_enough_for_psycopg_to_keep_them_parsed(store: AgentStore) -> None:
    # psycopg parses a statement's placeholders again on every call once it is over
    # 4,096 bytes (its MAX_CACHED_STATEMENT_LENGTH): a quarter of a step's client time
    # when the steps were built with SQLAlchemy's expression language (7 KB). In a
    # schema of its own (the longest name there may be), each table is named in it.
    engine = getattr(store, "calls_engine", store.engine)
    for schema in (None, "s" * 32):
        found = steps(store.backend, schema)
        assert found is not None
        for name, step in vars(found).items():
            length = len(str(step.compile(dialect=engine.dialect)))
            assert length <= 4096, (schema, name, length)
