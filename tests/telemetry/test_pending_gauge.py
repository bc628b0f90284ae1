"""The gauge of pending tasks per run: only when asked for, read only when a metric
reader collects, on both faces and both dialects."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.telemetry import observe_pending_tasks
from tests.telemetry.conftest import Metrics, Spans

GAUGE = "agentstore.tasks.pending"


def pending(recorded: Metrics) -> dict[str, Any]:
    """The gauge's latest reading, per run."""
    recorded.recorded.clear()
    return {a["agentstore.run_id"]: v for a, v in recorded.read().get(GAUGE, [])}


def plan(store: AgentStore, count: int) -> str:
    run = store.runs.create("goal", "/repo", "running")
    store.tasks.replace_pending(run.id, [TaskDraft(str(n), "o") for n in range(count)])
    return str(run.id)


def test_pending_tasks_are_read_when_a_reader_collects_and_only_then(
    sync_store: AgentStore, recorded: Metrics, spans: Spans
) -> None:
    first, second = plan(sync_store, 3), plan(sync_store, 1)
    sync_store.runs.create("nothing planned", "/repo")
    statements: list[str] = []
    sa.event.listen(sync_store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    stop = observe_pending_tasks(sync_store)
    try:
        assert statements == []  # asking reads nothing
        assert pending(recorded) == {first: 3, second: 1}
        assert len(statements) >= 1
        sync_store.tasks.claim_next("w", run_id=first)
        assert pending(recorded) == {first: 2, second: 1}
        assert spans.named("agentstore.tasks.by_run") == []  # the gauge's read is no call
    finally:
        stop()
    read = len(statements)
    assert pending(recorded) == {}
    assert len(statements) == read  # stopped: not read again


def test_an_asyncio_store_is_observed_through_a_sync_engine_of_its_own(
    db_url: str, sync_store: AgentStore, recorded: Metrics
) -> None:
    run_id = plan(sync_store, 2)

    async def observe() -> Any:
        async with AsyncAgentStore.open(db_url) as store:
            return observe_pending_tasks(store)

    stop = asyncio.run(observe())  # the reader collects later, in its own thread
    try:
        assert pending(recorded) == {run_id: 2}
    finally:
        stop()
