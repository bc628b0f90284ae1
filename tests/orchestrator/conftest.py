from __future__ import annotations

import pytest

from agentstore import AgentStore, RunRecord, TaskDraft, TaskRecord
from tests.support.databases import WITH_POOLER


@pytest.fixture(params=WITH_POOLER)
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite, PostgreSQL, and PostgreSQL through PgBouncer in transaction mode."""
    return str(request.param)


@pytest.fixture
def run(store: AgentStore) -> RunRecord:
    return store.runs.create("ship the feature", "/repo")


def drafts(count: int, **fields: object) -> list[TaskDraft]:
    return [TaskDraft(title=f"task {n}", objective=f"do {n}", **fields) for n in range(count)]  # type: ignore[arg-type]


def claimed_times(store: AgentStore, run: RunRecord, times: int) -> TaskRecord:
    """A new task of ``run`` claimed (and put back) ``times`` times: it has that many
    attempts to record."""
    [task] = store.tasks.replace_pending(run.id, drafts(1))
    for _ in range(times):
        store.tasks.claim_next("w", run_id=run.id)
        store.tasks.requeue_in_progress(run.id)
    return store.tasks.get(task.id)
