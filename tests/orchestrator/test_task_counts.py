"""The tasks of runs counted by status, as a runs table shows them: every run asked for
and every status present, counted by the database."""

from __future__ import annotations

import uuid

import pytest

from agentstore import AgentStore, RunRecord, TaskStatus
from agentstore.errors import ValidationError
from tests.orchestrator.conftest import drafts


def test_counts_give_every_status_of_every_run_asked_for(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(4))
    [held] = store.tasks.claim_next("w", run_id=run.id)
    store.tasks.complete(held.id, "done", attempt=held.attempt)
    [held] = store.tasks.claim_next("w", run_id=run.id)
    other = store.runs.create("another", "/repo")
    store.tasks.replace_pending(other.id, drafts(2))
    unknown = uuid.uuid4()

    counts = store.tasks.counts([run.id, str(other.id).upper(), unknown])

    assert set(counts) == {run.id, other.id, unknown}
    assert counts[run.id] == {
        **dict.fromkeys(TaskStatus, 0),
        TaskStatus.PENDING: 2,
        TaskStatus.IN_PROGRESS: 1,
        TaskStatus.COMPLETED: 1,
    }
    assert counts[other.id] == {**dict.fromkeys(TaskStatus, 0), TaskStatus.PENDING: 2}
    assert counts[unknown] == dict.fromkeys(TaskStatus, 0)
    assert store.tasks.counts([]) == {}


@pytest.mark.parametrize(
    "run_ids", ["0190a3c4-0000-7000-8000-000000000000", ["not-a-uuid"], [uuid.uuid4()] * 501]
)
def test_counts_refuse_what_is_not_a_list_of_at_most_500_ids(
    store: AgentStore, run_ids: object
) -> None:
    with pytest.raises(ValidationError):
        store.tasks.counts(run_ids)  # type: ignore[arg-type]
