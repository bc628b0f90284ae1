from __future__ import annotations

import pytest

from agentstore import AgentStore, RunRecord, TaskDraft


@pytest.fixture
def run(store: AgentStore) -> RunRecord:
    return store.runs.create("ship the feature", "/repo")


def drafts(count: int, **fields: object) -> list[TaskDraft]:
    return [TaskDraft(title=f"task {n}", objective=f"do {n}", **fields) for n in range(count)]  # type: ignore[arg-type]
