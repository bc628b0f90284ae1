"""Completions in batches (``store.tasks.complete_many``): each fenced, recorded and
journalled as ``complete`` does it, a lost claim reported for its task alone, a retry
writing nothing, and the next claim in the same call."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from agentstore import AgentStore, BatchHandoff, Completion, RunRecord, TaskStatus
from agentstore.errors import InvalidTransitionError, NotFoundError, ValidationError
from tests.orchestrator.conftest import drafts
from tests.orchestrator.test_task_life import SHORT, kinds, wait_until
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump, dump_run

HOUR = timedelta(hours=1)


def done(tasks: list[Any]) -> list[Completion]:
    """A completion of each task under its claim, with a result naming it."""
    return [Completion(t.id, f"done {t.title}", t.attempt, {"title": t.title}) for t in tasks]


def test_a_batch_writes_what_completing_one_at_a_time_writes(store: AgentStore) -> None:
    one_by_one, batched = (store.runs.create("same plan", "/r") for _ in range(2))
    for run in (one_by_one, batched):
        store.tasks.replace_pending(run.id, drafts(5))
    held = store.tasks.claim_next("w", run_id=one_by_one.id, lease=HOUR, limit=4)
    for completion in done(held):
        store.tasks.complete(
            completion.task_id,
            completion.summary,
            attempt=completion.attempt,
            result=completion.result,
        )
    held = store.tasks.claim_next("w", run_id=batched.id, lease=HOUR, limit=4)
    handoff = store.tasks.complete_many(done(held))

    assert handoff == BatchHandoff(handoff.completed, [], [])
    assert [t.title for t in handoff.completed] == ["task 0", "task 1", "task 2", "task 3"]
    assert {t.status for t in handoff.completed} == {TaskStatus.COMPLETED}
    assert dump_run(store, batched.id) == dump_run(store, one_by_one.id)
    assert kinds(store, batched) == ["task_completed"] * 4


def test_a_lost_claim_is_reported_and_the_others_complete(
    store: AgentStore, run: RunRecord
) -> None:
    store.tasks.replace_pending(run.id, drafts(3))
    first, second, third = store.tasks.claim_next("w", run_id=run.id, lease=HOUR, limit=3)
    store.tasks.release(second.id, "shutting down", attempt=1)  # the claim is lost
    handoff = store.tasks.complete_many(done([first, second, third]))

    assert [t.id for t in handoff.completed] == [first.id, third.id]
    assert handoff.stale == [second.id]
    assert store.tasks.get(second.id).status is TaskStatus.PENDING
    assert store.attempts.latest(second.id) is None
    assert kinds(store, run) == ["task_released", "task_completed", "task_completed"]


@pytest.fixture
def planned(store: AgentStore, run: RunRecord) -> RunRecord:
    store.tasks.replace_pending(run.id, drafts(6))
    return run


def test_a_batch_made_again_after_a_lost_reply_changes_nothing(
    store: AgentStore, planned: RunRecord
) -> None:
    held = store.tasks.claim_next("w", run_id=planned.id, lease=HOUR, limit=3)
    store.tasks.release(held[0].id, "gone", attempt=1)
    first = store.tasks.complete_many(done(held))
    before = dump(store)
    again = store.tasks.complete_many(done(held))
    assert dump(store) == before
    assert again == first


def test_a_batch_claims_the_next_tasks_in_the_same_call(
    store: AgentStore, planned: RunRecord
) -> None:
    held = store.tasks.claim_next("w", run_id=planned.id, lease=HOUR, limit=2)
    handoff = store.tasks.complete_many(done(held), worker="w2", run_id=planned.id, limit=3)
    assert [t.title for t in handoff.completed] == ["task 0", "task 1"]
    assert [t.title for t in handoff.claimed] == ["task 2", "task 3", "task 4"]
    assert {(t.claimed_by, t.attempt, t.status) for t in handoff.claimed} == {
        ("w2", 1, TaskStatus.IN_PROGRESS)
    }
    # Every claim lost: the call still claims; with nothing to complete, it only claims.
    store.tasks.requeue_in_progress(planned.id)
    handoff = store.tasks.complete_many(done(handoff.claimed), worker="w2", limit=2)
    assert handoff.completed == [] and len(handoff.stale) == 3
    assert [(t.title, t.attempt) for t in handoff.claimed] == [("task 2", 2), ("task 3", 2)]
    handoff = store.tasks.complete_many([], worker="w2", run_id=planned.id, limit=5)
    assert [t.title for t in handoff.claimed] == ["task 4", "task 5"]


def test_a_batch_ends_its_own_expired_claims_and_rescues_the_others(
    store: AgentStore, run: RunRecord
) -> None:
    # The holder finishes after its leases ran out but before anyone rescued them: its
    # completions stand; the claim in the same call rescues and takes the dead worker's.
    *mine, theirs = store.tasks.replace_pending(run.id, drafts(3))
    held = store.tasks.claim_next("w", run_id=run.id, lease=SHORT, limit=2)
    [lost] = store.tasks.claim_next("dead worker", run_id=run.id, lease=SHORT)
    wait_until(lost.lease_expires_at)  # type: ignore[arg-type]
    handoff = store.tasks.complete_many(done(held), worker="w", run_id=run.id, limit=2)
    assert [t.id for t in handoff.completed] == [t.id for t in mine]
    assert [(t.id, t.attempt) for t in handoff.claimed] == [(theirs.id, 2)]
    assert sorted(kinds(store, run)) == ["lease_expired_requeued"] + ["task_completed"] * 2


def test_an_unknown_or_otherwise_ended_task_fails_the_batch_and_writes_nothing(
    store: AgentStore, planned: RunRecord
) -> None:
    first, second = store.tasks.claim_next("w", run_id=planned.id, lease=HOUR, limit=2)
    unknown = Completion(uuid.uuid4(), "done", 1)
    batch = [*done([first]), unknown]
    refused(store, NotFoundError, lambda: store.tasks.complete_many(batch, worker="w", limit=1))
    store.tasks.block(second.id, "stuck", "needs-a-key", attempt=1)  # ended otherwise
    batch = done([first, second])
    refused(
        store,
        InvalidTransitionError,
        lambda: store.tasks.complete_many(batch, worker="w", limit=1),
    )


@pytest.mark.parametrize(
    ("bad", "options"),
    [
        ("not a completion", {}),
        (Completion("not-an-id", "s", 1), {}),
        (Completion(uuid.uuid4(), "", 1), {}),
        (Completion(uuid.uuid4(), "s", 0), {}),
        (Completion(uuid.uuid4(), "s", 1, {"nan": float("nan")}), {}),
        ("twice", {}),
        (None, {"limit": 1}),  # a claim names its worker
        (None, {"worker": "w", "limit": -1}),
        (None, {"worker": "w", "limit": 1, "lease": timedelta(0)}),
        (None, {"worker": "", "limit": 1}),
        (None, {"run_id": "nope"}),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    store: AgentStore, planned: RunRecord, bad: Any, options: dict[str, Any]
) -> None:
    held = store.tasks.claim_next("w", run_id=planned.id, lease=HOUR, limit=2)
    batch: list[Any] = done(held)
    if bad == "twice":
        batch.append(batch[0])
    elif bad is not None:
        batch.append(bad)
    refused(store, ValidationError, lambda: store.tasks.complete_many(batch, **options))


def test_too_many_completions_are_refused(store: AgentStore) -> None:
    batch = [Completion(uuid.uuid4(), "s", 1) for _ in range(1001)]
    refused(store, ValidationError, lambda: store.tasks.complete_many(batch))
