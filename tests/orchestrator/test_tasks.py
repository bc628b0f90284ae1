"""Tasks: the plan, atomic claims, leases, fencing tokens and transitions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from agentstore import AgentStore, RunRecord, TaskDraft, TaskStatus
from agentstore.errors import (
    InvalidTransitionError,
    NotFoundError,
    StaleClaimError,
    ValidationError,
)
from tests.orchestrator.conftest import drafts
from tests.support.state import dump

LEASE = timedelta(minutes=5)


def refused(store: AgentStore, error: type[Exception], call: Callable[[], Any]) -> None:
    """``call`` raises ``error`` and leaves every table as it was."""
    before = dump(store)
    with pytest.raises(error):
        call()
    assert dump(store) == before


def test_replace_pending_inserts_the_plan_in_order(store: AgentStore, run: RunRecord) -> None:
    tasks = store.tasks.replace_pending(run.id, drafts(3))
    assert [t.title for t in tasks] == ["task 0", "task 1", "task 2"]
    assert [t.status for t in tasks] == [TaskStatus.PENDING] * 3
    assert [t.title for t in store.tasks.list(run.id)] == ["task 0", "task 1", "task 2"]


def test_replace_pending_abandons_pending_and_held_tasks(store: AgentStore, run: RunRecord) -> None:
    old = store.tasks.replace_pending(run.id, drafts(3))
    held = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    new = store.tasks.replace_pending(run.id, drafts(2))
    statuses = {t.id: t.status for t in store.tasks.list(run.id)}
    assert all(statuses[t.id] == TaskStatus.ABANDONED for t in old)
    assert all(statuses[t.id] == TaskStatus.PENDING for t in new)
    with pytest.raises(StaleClaimError):
        store.tasks.complete(held.id, "done late", attempt=held.attempt)


def test_a_new_plan_comes_after_the_old_one_in_plan_order(
    store: AgentStore, run: RunRecord
) -> None:
    old = store.tasks.replace_pending(run.id, drafts(2))
    new = store.tasks.replace_pending(run.id, drafts(2))
    assert min(t.position for t in new) > max(t.position for t in old)


def test_replace_pending_keeps_finished_tasks(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    store.tasks.complete(task.id, "done", attempt=1)
    store.tasks.replace_pending(run.id, drafts(1))
    assert store.tasks.get(task.id).status == TaskStatus.COMPLETED


def test_replace_pending_of_an_unknown_run_is_not_found(store: AgentStore) -> None:
    refused(store, NotFoundError, lambda: store.tasks.replace_pending(uuid.uuid4(), drafts(1)))


@pytest.mark.parametrize(
    "draft",
    [
        TaskDraft(title="", objective="o"),
        TaskDraft(title="t", objective="   "),
        TaskDraft(title="t", objective="o", acceptance_criteria="not a list"),
        TaskDraft(title="t", objective="o", max_attempts=0),
    ],
)
def test_a_bad_draft_changes_nothing(store: AgentStore, run: RunRecord, draft: TaskDraft) -> None:
    store.tasks.replace_pending(run.id, drafts(2))
    refused(store, ValidationError, lambda: store.tasks.replace_pending(run.id, [draft]))


def test_claim_next_takes_a_runs_tasks_in_plan_order(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(3))
    first = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    rest = store.tasks.claim_next("w", run_id=run.id, lease=LEASE, limit=5)
    assert [t.title for t in first] == ["task 0"]
    assert [t.title for t in rest] == ["task 1", "task 2"]
    assert store.tasks.claim_next("w", run_id=run.id, lease=LEASE) == []


def test_a_claim_sets_holder_lease_and_attempt(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("worker-7", run_id=run.id, lease=LEASE)[0]
    assert task.status == TaskStatus.IN_PROGRESS
    assert task.claimed_by == "worker-7"
    assert task.attempt == 1
    assert task.lease_expires_at is not None and task.lease_expires_at > task.updated_at


def test_claim_across_runs_goes_by_priority_then_age(store: AgentStore) -> None:
    first_run = store.runs.create("a", "/a")
    second_run = store.runs.create("b", "/b")
    store.tasks.replace_pending(first_run.id, [TaskDraft("old low", "o")])
    store.tasks.replace_pending(second_run.id, [TaskDraft("urgent", "o", priority=5)])
    store.tasks.replace_pending(
        first_run.id, [TaskDraft("low", "o"), TaskDraft("high", "o", priority=5)]
    )
    claimed = store.tasks.claim_next("w", lease=LEASE, limit=10)
    assert [t.title for t in claimed] == ["urgent", "high", "low"]


def test_claim_next_refuses_bad_arguments(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    for call in (
        lambda: store.tasks.claim_next("", lease=LEASE),
        lambda: store.tasks.claim_next("w", lease=timedelta(0)),
        lambda: store.tasks.claim_next("w", lease=LEASE, limit=0),
    ):
        refused(store, ValidationError, call)


def test_heartbeat_extends_the_lease_of_the_holder(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=timedelta(seconds=5))[0]
    extended = store.tasks.heartbeat(task.id, task.attempt, timedelta(hours=1))
    assert task.lease_expires_at is not None and extended.lease_expires_at is not None
    assert extended.lease_expires_at > task.lease_expires_at


def test_heartbeat_with_a_stale_token_is_refused(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    store.tasks.requeue_in_progress(run.id)
    refused(store, StaleClaimError, lambda: store.tasks.heartbeat(task.id, 1, LEASE))


@pytest.mark.parametrize("finish", ["complete", "block", "abandon"])
def test_the_holder_finishes_its_task(store: AgentStore, run: RunRecord, finish: str) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    if finish == "complete":
        done = store.tasks.complete(task.id, "implemented", attempt=task.attempt)
        assert (done.status, done.implementation_summary) == (TaskStatus.COMPLETED, "implemented")
    elif finish == "block":
        done = store.tasks.block(task.id, "stuck", "missing-dep", attempt=task.attempt)
        assert (done.status, done.blocker_signature) == (TaskStatus.BLOCKED, "missing-dep")
    else:
        done = store.tasks.abandon(task.id, "no longer needed", attempt=task.attempt)
        assert done.status == TaskStatus.ABANDONED
    assert done.claimed_by is None and done.lease_expires_at is None


def test_completing_a_task_never_claimed_is_a_stale_claim(
    store: AgentStore, run: RunRecord
) -> None:
    task = store.tasks.replace_pending(run.id, drafts(1))[0]
    refused(store, StaleClaimError, lambda: store.tasks.complete(task.id, "done", attempt=1))


def test_completing_twice_is_an_invalid_transition(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    store.tasks.complete(task.id, "done", attempt=1)
    refused(
        store, InvalidTransitionError, lambda: store.tasks.complete(task.id, "again", attempt=1)
    )


def test_a_requeued_task_refuses_its_old_token(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    store.tasks.requeue_in_progress(run.id)
    refused(store, StaleClaimError, lambda: store.tasks.complete(task.id, "late", attempt=1))


def test_a_reclaimed_task_refuses_the_previous_holders_token(
    store: AgentStore, run: RunRecord
) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    store.tasks.claim_next("first", run_id=run.id, lease=LEASE)
    store.tasks.requeue_in_progress(run.id)
    second = store.tasks.claim_next("second", run_id=run.id, lease=LEASE)[0]
    assert second.attempt == 2
    refused(store, StaleClaimError, lambda: store.tasks.complete(second.id, "late", attempt=1))
    assert store.tasks.complete(second.id, "done", attempt=2).status == TaskStatus.COMPLETED


def test_an_operator_abandons_a_pending_or_held_task(store: AgentStore, run: RunRecord) -> None:
    held, pending = store.tasks.replace_pending(run.id, drafts(2))
    store.tasks.claim_next("w", run_id=run.id, lease=LEASE)  # holds the first
    refused(store, ValidationError, lambda: store.tasks.abandon(held.id, "x", attempt=None))  # type: ignore[arg-type]
    for task in (held, pending):
        assert store.tasks.force_abandon(task.id, "dropped").status == TaskStatus.ABANDONED
    refused(store, StaleClaimError, lambda: store.tasks.complete(held.id, "late", attempt=1))
    refused(store, InvalidTransitionError, lambda: store.tasks.force_abandon(held.id, "again"))
    kinds = [e.kind for e in store.events.list(run.id)]
    assert kinds.count("task_abandoned") == 2


def test_finishing_an_unknown_task_is_not_found(store: AgentStore) -> None:
    refused(store, NotFoundError, lambda: store.tasks.complete(uuid.uuid4(), "x", attempt=1))
    refused(store, NotFoundError, lambda: store.tasks.get(uuid.uuid4()))


def test_an_over_long_blocker_signature_is_refused(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    refused(store, ValidationError, lambda: store.tasks.block(task.id, "s", "x" * 300, attempt=1))


def test_requeue_in_progress_returns_held_tasks_to_pending_with_an_event(
    store: AgentStore, run: RunRecord
) -> None:
    store.tasks.replace_pending(run.id, drafts(3))
    store.tasks.claim_next("w", run_id=run.id, lease=LEASE, limit=2)
    assert store.tasks.requeue_in_progress(run.id) == 2
    assert len(store.tasks.list(run.id, [TaskStatus.PENDING])) == 3
    assert store.events.list(run.id)[-1].kind == "requeue_in_progress"
    assert store.tasks.requeue_in_progress(run.id) == 0


def test_requeue_expired_rescues_only_expired_leases(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(2))
    # Long enough that the second claim cannot find it expired (a claim rescues too).
    short = store.tasks.claim_next("w", run_id=run.id, lease=timedelta(milliseconds=500))[0]
    long = store.tasks.claim_next("w", run_id=run.id, lease=timedelta(hours=1))[0]
    time.sleep(0.6)
    assert store.tasks.requeue_expired() == 1
    assert store.tasks.get(short.id).status == TaskStatus.PENDING
    assert store.tasks.get(long.id).status == TaskStatus.IN_PROGRESS


def test_a_task_whose_lease_keeps_expiring_ends_blocked(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1, max_attempts=3))
    for attempt in range(1, 4):
        task = store.tasks.claim_next("w", run_id=run.id, lease=timedelta(milliseconds=10))[0]
        assert task.attempt == attempt
        time.sleep(0.05)
        assert store.tasks.requeue_expired() == 1
    final = store.tasks.get(task.id)
    assert final.status == TaskStatus.BLOCKED
    assert final.blocker_signature == "lease_expired"
    assert store.tasks.claim_next("w", run_id=run.id, lease=LEASE) == []


def test_list_filters_by_status_and_refuses_unknown_ones(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(3))
    store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    assert [t.title for t in store.tasks.list(run.id, ["pending"])] == ["task 1", "task 2"]
    assert [t.title for t in store.tasks.list(run.id, ["in_progress"])] == ["task 0"]
    with pytest.raises(ValidationError):
        store.tasks.list(run.id, ["done"])


def test_task_records_are_immutable_values(store: AgentStore, run: RunRecord) -> None:
    task = store.tasks.replace_pending(run.id, drafts(1, acceptance_criteria=["a", "b"]))[0]
    assert task.acceptance_criteria == ("a", "b")
    assert task.created_at.tzinfo is not None
    with pytest.raises(AttributeError):
        task.status = TaskStatus.COMPLETED  # type: ignore[misc]
