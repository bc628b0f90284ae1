"""A refused change says where the row is now (``status``, and a task's ``attempt``), so
a caller can act on it without reading the row back; the fields survive pickling (an
error sent from a worker process)."""

from __future__ import annotations

import pickle

import pytest

from agentstore import AgentStore, RunRecord, TaskDraft
from agentstore.errors import InvalidTransitionError, StaleClaimError


def test_a_stale_claim_says_where_the_task_is_now(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
    [first] = store.tasks.claim_next("a", run_id=run.id)
    store.tasks.requeue_in_progress(run.id)
    store.tasks.claim_next("b", run_id=run.id)  # attempt 2 now holds it
    with pytest.raises(StaleClaimError) as refused:
        store.tasks.complete(first.id, "late", attempt=1)
    assert (refused.value.status, refused.value.attempt) == ("in_progress", 2)
    copy = pickle.loads(pickle.dumps(refused.value))
    assert type(copy) is StaleClaimError and str(copy) == str(refused.value)
    assert (copy.status, copy.attempt) == ("in_progress", 2)


def test_an_invalid_transition_says_the_current_status(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
    [task] = store.tasks.claim_next("a", run_id=run.id)
    store.tasks.complete(task.id, "done", attempt=1)
    with pytest.raises(InvalidTransitionError) as refused:
        store.tasks.block(task.id, "stuck", None, attempt=1)
    assert (refused.value.status, refused.value.attempt) == ("completed", 1)
    with pytest.raises(InvalidTransitionError) as cancelled:
        store.tasks.cancel(task.id, "too late")
    assert cancelled.value.status == "completed"

    execution = store.executions.create("scope", "x")
    store.executions.finish("scope", execution.id, "failed", error_text="boom")
    with pytest.raises(InvalidTransitionError) as finished:
        store.executions.finish("scope", execution.id, "completed")
    assert (finished.value.status, finished.value.attempt) == ("failed", None)
