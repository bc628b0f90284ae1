"""A task's whole life: each ending writes the task, its attempt record and a journal
event together; failures come back after a backoff or end blocked; schedules; leases
rescued by the next claim; cancellation; paused runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from agentstore import AgentStore, Backoff, RunRecord, TaskDraft, TaskStatus
from agentstore.errors import InvalidTransitionError, StaleClaimError, ValidationError
from agentstore.statuses import AttemptStatus
from tests.orchestrator.test_tasks import refused

HOUR = timedelta(hours=1)
SHORT = timedelta(milliseconds=300)  # a lease that runs out while the test waits
# Long enough that "not claimable yet" holds on a loaded machine (a claim runs at once).
SOON = timedelta(seconds=1.5)


def kinds(store: AgentStore, run: RunRecord) -> list[str]:
    """The journal's event kinds after ``run_created``."""
    return [event.kind for event in store.events.list(run.id)][1:]


def plan_one(store: AgentStore, run: RunRecord, **fields: object) -> TaskDraft:
    [task] = store.tasks.replace_pending(run.id, [TaskDraft("t", "o", **fields)])  # type: ignore[arg-type]
    return task  # type: ignore[return-value]


def claim(store: AgentStore, run: RunRecord, lease: timedelta = HOUR) -> list[object]:
    return store.tasks.claim_next("w", run_id=run.id, lease=lease)  # type: ignore[return-value]


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)


def test_each_ending_records_its_attempt_and_journals(store: AgentStore, run: RunRecord) -> None:
    endings = {"complete": "completed", "block": "blocked", "abandon": "abandoned"}
    for ending, outcome in endings.items():
        store.tasks.replace_pending(run.id, [TaskDraft(ending, "o")])
        [task] = store.tasks.claim_next("w", run_id=run.id)
        if ending == "complete":
            store.tasks.complete(task.id, "done", attempt=1, result={"files": 2})
        elif ending == "block":
            store.tasks.block(task.id, "stuck", "needs-a-key", attempt=1)
        else:
            store.tasks.abandon(task.id, "dropped", attempt=1)
        attempt = store.attempts.latest(task.id)
        assert attempt is not None and attempt.attempt == 1
        assert attempt.run_id == run.id
        assert attempt.status is AttemptStatus(outcome)
    assert store.attempts.latest(task.id).summary == "dropped"  # type: ignore[union-attr]
    assert kinds(store, run) == ["task_completed", "task_blocked", "task_abandoned"]
    [completed] = [a for a in store.attempts.recent(run.id) if a.status == "completed"]
    assert completed.result == {"files": 2} and completed.summary == "done"


def test_an_attempt_recorded_by_the_caller_is_kept(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    claim(store, run)
    store.attempts.add(run.id, task.id, 1, "completed", "the caller's own record")  # type: ignore[attr-defined]
    store.tasks.complete(task.id, "done", attempt=1)  # type: ignore[attr-defined]
    assert store.attempts.latest(task.id).summary == "the caller's own record"  # type: ignore[attr-defined, union-attr]


def test_a_failure_comes_back_after_the_backoff(store: AgentStore, run: RunRecord) -> None:
    """Failing twice then succeeding: two failed attempts, each retry available no sooner
    than the policy's delay after its failure, one completion."""
    backoff = Backoff(first=SOON, cap=SOON)
    task = plan_one(store, run, backoff=backoff)
    for attempt in (1, 2):
        [held] = claim(store, run)
        assert held.attempt == attempt  # type: ignore[attr-defined]
        failed_at = datetime.now(UTC)
        retried = store.tasks.fail(task.id, f"boom {attempt}", attempt=attempt)  # type: ignore[attr-defined]
        assert retried.status is TaskStatus.PENDING and retried.claimed_by is None
        assert retried.available_at - failed_at >= backoff.base_delay(attempt) - timedelta(
            milliseconds=5  # the database's clock and this one read a moment apart
        )
        assert claim(store, run) == []  # not before its time
        wait_until(retried.available_at)
    [held] = claim(store, run)
    store.tasks.complete(task.id, "third time lucky", attempt=3)  # type: ignore[attr-defined]
    outcomes = [(a.attempt, a.status, a.summary) for a in store.attempts.recent(run.id)]
    assert outcomes == [
        (1, AttemptStatus.FAILED, "boom 1"),
        (2, AttemptStatus.FAILED, "boom 2"),
        (3, AttemptStatus.COMPLETED, "third time lucky"),
    ]
    assert kinds(store, run) == ["task_retry_scheduled", "task_retry_scheduled", "task_completed"]


def test_retry_in_overrides_the_backoff(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run, backoff=Backoff(first=HOUR, cap=HOUR))
    claim(store, run)
    store.tasks.fail(task.id, "try again now", attempt=1, retry_in=timedelta(0))  # type: ignore[attr-defined]
    [again] = claim(store, run)
    assert again.attempt == 2  # type: ignore[attr-defined]


def test_failures_use_up_max_attempts_and_block(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run, max_attempts=2)
    for attempt in (1, 2):
        claim(store, run)
        ended = store.tasks.fail(task.id, "boom", attempt=attempt, retry_in=timedelta(0))  # type: ignore[attr-defined]
    assert ended.status is TaskStatus.BLOCKED
    assert ended.blocker_signature == "attempts_exhausted"
    assert claim(store, run) == []
    assert kinds(store, run) == ["task_retry_scheduled", "task_blocked"]


def test_fail_is_fenced_and_checked(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    # Never claimed under attempt 1: the token is not a claim of it.
    refused(store, StaleClaimError, lambda: store.tasks.fail(task.id, "e", attempt=1))  # type: ignore[attr-defined]
    claim(store, run)
    refused(store, StaleClaimError, lambda: store.tasks.fail(task.id, "e", attempt=2))  # type: ignore[attr-defined]
    for bad in (timedelta(-1), 5, timedelta(days=40_000)):
        refused(
            store,
            ValidationError,
            lambda bad=bad: store.tasks.fail(task.id, "e", attempt=1, retry_in=bad),  # type: ignore[attr-defined, misc]
        )


def test_a_scheduled_task_is_not_claimed_before_its_time(store: AgentStore, run: RunRecord) -> None:
    later = plan_one(store, run, delay=HOUR)
    assert claim(store, run) == [] and store.tasks.claim_next("w") == []
    assert later.available_at - later.created_at >= HOUR - timedelta(seconds=1)  # type: ignore[attr-defined]
    soon = datetime.now(UTC) + SOON
    store.tasks.replace_pending(run.id, [TaskDraft("soon", "o", available_at=soon)])
    assert claim(store, run) == []
    wait_until(soon)
    [task] = claim(store, run)
    assert task.title == "soon"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "draft",
    [
        TaskDraft("t", "o", available_at=datetime.now(UTC), delay=HOUR),
        TaskDraft("t", "o", available_at=datetime(2030, 1, 1)),  # naive
        TaskDraft("t", "o", delay=timedelta(-1)),
        TaskDraft("t", "o", backoff="fast"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_schedule_is_refused(store: AgentStore, run: RunRecord, draft: TaskDraft) -> None:
    refused(store, ValidationError, lambda: store.tasks.replace_pending(run.id, [draft]))


def test_a_bad_backoff_is_refused() -> None:
    for bad in (
        {"first": timedelta(-1)},
        {"first": HOUR, "cap": timedelta(seconds=1)},
        {"jitter": 2},
        {"jitter": True},
    ):
        with pytest.raises(ValidationError):
            Backoff(**bad)  # type: ignore[arg-type]


def test_a_claim_rescues_an_expired_lease_without_a_reaper(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    [lost] = store.tasks.claim_next("dead worker", run_id=run.id, lease=SHORT)
    wait_until(lost.lease_expires_at)  # type: ignore[arg-type]
    [rescued] = store.tasks.claim_next("next worker", run_id=run.id)
    assert rescued.id == task.id and rescued.attempt == 2  # type: ignore[attr-defined]
    assert rescued.claimed_by == "next worker"
    first = store.attempts.recent(run.id)[0]
    assert (first.attempt, first.status, first.blocker_signature) == (
        1,
        AttemptStatus.FAILED,
        "lease_expired",
    )
    assert kinds(store, run) == ["lease_expired_requeued"]
    with pytest.raises(StaleClaimError):
        store.tasks.complete(task.id, "too late", attempt=1)  # type: ignore[attr-defined]


def test_a_lease_expiring_at_max_attempts_blocks_the_task(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run, max_attempts=1)
    [lost] = claim(store, run, lease=SHORT)
    wait_until(lost.lease_expires_at)  # type: ignore[attr-defined]
    assert claim(store, run) == []
    blocked = store.tasks.get(task.id)  # type: ignore[attr-defined]
    assert (blocked.status, blocked.blocker_signature) == (TaskStatus.BLOCKED, "lease_expired")
    assert kinds(store, run) == ["lease_expired_blocked"]


def test_cancelling_a_pending_task_abandons_it(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    cancelled = store.tasks.cancel(task.id, "not needed")  # type: ignore[attr-defined]
    assert cancelled.status is TaskStatus.ABANDONED and cancelled.cancel_reason == "not needed"
    assert claim(store, run) == []
    refused(store, InvalidTransitionError, lambda: store.tasks.cancel(task.id, "again"))  # type: ignore[attr-defined]
    assert kinds(store, run) == ["task_cancelled"]


def test_the_holder_of_a_cancelled_task_learns_it_on_heartbeat(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    claim(store, run)
    assert not store.tasks.heartbeat(task.id, 1, HOUR).cancel_requested  # type: ignore[attr-defined]
    asked = store.tasks.cancel(task.id, "stop")  # type: ignore[attr-defined]
    assert asked.status is TaskStatus.IN_PROGRESS and asked.cancel_requested
    assert store.tasks.heartbeat(task.id, 1, HOUR).cancel_requested  # type: ignore[attr-defined]
    store.tasks.abandon(task.id, "stopped on request", attempt=1)  # type: ignore[attr-defined]
    assert kinds(store, run) == ["task_cancel_requested", "task_abandoned"]


def test_a_cancelled_task_is_not_retried(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    [held] = claim(store, run, lease=SHORT)
    store.tasks.cancel(task.id, "stop")  # type: ignore[attr-defined]
    failed = store.tasks.fail(task.id, "boom", attempt=1, retry_in=timedelta(0))  # type: ignore[attr-defined]
    assert failed.status is TaskStatus.ABANDONED
    other = plan_one(store, run)
    [held] = claim(store, run, lease=SHORT)
    store.tasks.cancel(other.id, "stop")  # type: ignore[attr-defined]
    wait_until(held.lease_expires_at)  # type: ignore[attr-defined]
    assert claim(store, run) == []  # the holder died: rescued as abandoned, not requeued
    assert store.tasks.get(other.id).status is TaskStatus.ABANDONED  # type: ignore[attr-defined]


def test_a_paused_runs_tasks_are_not_claimed(store: AgentStore, run: RunRecord) -> None:
    plan_one(store, run)
    paused = store.runs.pause(run.id)
    assert paused.status == "paused"
    assert claim(store, run) == [] and store.tasks.claim_next("w") == []
    store.runs.resume(run.id)
    assert len(claim(store, run)) == 1
    assert kinds(store, run)[-2:] == ["run_paused", "run_resumed"]
    refused(store, InvalidTransitionError, lambda: store.runs.resume(run.id))
    store.runs.update(run.id, status="completed")
    refused(store, InvalidTransitionError, lambda: store.runs.pause(run.id))


def test_complete_and_claim_hands_over_in_one_call(store: AgentStore, run: RunRecord) -> None:
    first, second, third = store.tasks.replace_pending(
        run.id, [TaskDraft(f"t{n}", "o") for n in range(3)]
    )
    claim(store, run)
    handoff = store.tasks.complete_and_claim(
        first.id, "done", attempt=1, worker="w", run_id=run.id, limit=2, result={"ok": 1}
    )
    assert handoff.completed is not None and handoff.completed.status is TaskStatus.COMPLETED
    assert [task.id for task in handoff.claimed] == [second.id, third.id]
    assert store.attempts.latest(first.id).result == {"ok": 1}  # type: ignore[union-attr]
    assert kinds(store, run) == ["task_completed"]


def test_complete_and_claim_still_claims_when_the_claim_was_lost(
    store: AgentStore, run: RunRecord
) -> None:
    first, _ = store.tasks.replace_pending(run.id, [TaskDraft("a", "o"), TaskDraft("b", "o")])
    claim(store, run)
    store.tasks.requeue_in_progress(run.id)  # the claim on the first task is taken away
    handoff = store.tasks.complete_and_claim(first.id, "late", attempt=1, worker="w", run_id=run.id)
    assert handoff.completed is None
    assert [task.id for task in handoff.claimed] == [first.id]  # back in plan order
    assert store.tasks.get(first.id).attempt == 2


def test_complete_and_claim_ends_its_own_expired_claim_and_rescues_the_others(
    store: AgentStore, run: RunRecord
) -> None:
    # The holder finishes after its lease ran out but before anyone rescued the task: the
    # completion stands; the rescue in the same call takes only the other expired task,
    # which the call then claims (on PostgreSQL with a second claim: one statement sees
    # the tables as they were when it began).
    mine, theirs = store.tasks.replace_pending(run.id, [TaskDraft("a", "o"), TaskDraft("b", "o")])
    [held] = store.tasks.claim_next("w", run_id=run.id, lease=SHORT)
    [lost] = store.tasks.claim_next("dead worker", run_id=run.id, lease=SHORT)
    wait_until(lost.lease_expires_at)  # type: ignore[attr-defined]
    handoff = store.tasks.complete_and_claim(mine.id, "done", attempt=1, worker="w", run_id=run.id)
    assert handoff.completed is not None and handoff.completed.id == held.id  # type: ignore[attr-defined]
    assert [(t.id, t.attempt) for t in handoff.claimed] == [(theirs.id, 2)]
    # One transaction's events: their order among themselves is not promised.
    assert sorted(kinds(store, run)) == ["lease_expired_requeued", "task_completed"]
    attempts = {(a.task_id, a.attempt): a.status for a in store.attempts.recent(run.id)}
    assert attempts == {
        (mine.id, 1): AttemptStatus.COMPLETED,
        (theirs.id, 1): AttemptStatus.FAILED,
    }


def test_complete_and_claim_refuses_bad_arguments_and_changes_nothing(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    claim(store, run)
    for bad in ({"worker": ""}, {"limit": 0}, {"lease": timedelta(0)}, {"run_id": "nope"}):
        arguments = {"attempt": 1, "worker": "w", **bad}
        refused(
            store,
            ValidationError,
            lambda arguments=arguments: store.tasks.complete_and_claim(task.id, "s", **arguments),  # type: ignore[attr-defined, arg-type, misc]
        )
