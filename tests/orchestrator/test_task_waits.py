"""A task that waits for a person: its holder asks and gives the claim up, the task waits
held by nobody, and a person's answer (decided once) makes it claimable again, the answer
on the task for the next claim. Every step journalled; waits never use up attempts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentstore import AgentStore, Backoff, RunRecord, TaskDraft, TaskRecord, TaskStatus
from agentstore.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    StaleClaimError,
    ValidationError,
)
from agentstore.statuses import AttemptStatus
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump

HOUR = timedelta(hours=1)
SHORT = timedelta(milliseconds=300)  # a lease that runs out while the test waits
QUESTION = {"approve": "deploy to production?", "options": ["yes", "no"]}


def plan_one(store: AgentStore, run: RunRecord, **fields: Any) -> TaskRecord:
    [task] = store.tasks.replace_pending(run.id, [TaskDraft("deploy", "o", **fields)])
    return task


def claim(store: AgentStore, run: RunRecord, lease: timedelta = HOUR) -> TaskRecord:
    [held] = store.tasks.claim_next("w", run_id=run.id, lease=lease)
    return held


def asking(store: AgentStore, run: RunRecord, **fields: Any) -> TaskRecord:
    """A task of ``run`` claimed once and waiting for the answer to ``QUESTION``."""
    task = plan_one(store, run, **fields)
    held = claim(store, run)
    store.tasks.wait(task.id, QUESTION, attempt=held.attempt)
    return store.tasks.get(task.id)


def events(store: AgentStore, run: RunRecord) -> list[tuple[str, dict[str, Any]]]:
    """The journal after ``run_created``: (kind, payload)."""
    return [(e.kind, e.payload) for e in store.events.list(run.id)][1:]


def test_a_wait_gives_the_claim_up_and_records_the_question(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    held = claim(store, run)
    waiting = store.tasks.wait(task.id, QUESTION, attempt=held.attempt)
    assert waiting.status is TaskStatus.WAITING
    assert (waiting.claimed_by, waiting.lease_expires_at) == (None, None)
    assert (waiting.question, waiting.answer, waiting.waits) == (QUESTION, None, 1)
    assert store.tasks.get(task.id) == waiting
    attempt = store.attempts.latest(task.id)
    assert attempt is not None and attempt.attempt == 1
    assert (attempt.status, attempt.result) == (AttemptStatus.WAITING, {"question": QUESTION})
    assert events(store, run) == [
        ("task_waiting", {"task_id": str(task.id), "attempt": 1, "question": QUESTION})
    ]


def test_a_waiting_task_is_neither_claimed_nor_due(store: AgentStore, run: RunRecord) -> None:
    asking(store, run)
    assert store.tasks.claim_next("w", run_id=run.id) == []
    assert store.tasks.claim_next("w") == []
    assert store.tasks.next_due(run.id) is None and store.tasks.next_due() is None
    assert store.tasks.held_by("w") == []
    assert [t.status for t in store.tasks.list(run.id, ["waiting"])] == [TaskStatus.WAITING]


def test_an_answer_makes_the_task_claimable_with_the_answer(
    store: AgentStore, run: RunRecord
) -> None:
    task = asking(store, run)
    before = datetime.now(UTC)
    answered = store.tasks.answer(task.id, {"approved": True})
    assert answered.status is TaskStatus.PENDING
    assert (answered.question, answered.answer) == (QUESTION, {"approved": True})
    assert answered.available_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert answered.available_at >= before - timedelta(seconds=1)
    due = store.tasks.next_due(run.id)
    assert due is not None and due <= datetime.now(UTC) + timedelta(seconds=1)
    again = claim(store, run)
    assert (again.id, again.attempt) == (task.id, 2)  # a claim takes a new fencing token
    assert (again.question, again.answer) == (QUESTION, {"approved": True})
    store.tasks.complete(task.id, "deployed", attempt=2)
    assert [kind for kind, _ in events(store, run)] == [
        "task_waiting",
        "task_answered",
        "task_completed",
    ]
    assert events(store, run)[1][1] == {
        "task_id": str(task.id),
        "attempt": 1,
        "answer": {"approved": True},
    }


def test_asking_again_clears_the_previous_answer(store: AgentStore, run: RunRecord) -> None:
    task = asking(store, run)
    store.tasks.answer(task.id, "first answer")
    held = claim(store, run)
    again = store.tasks.wait(task.id, ["a", "second", "question"], attempt=held.attempt)
    assert (again.question, again.answer, again.waits) == (["a", "second", "question"], None, 2)
    assert store.tasks.answer(task.id, 2).answer == 2


def test_wait_is_fenced_like_any_ending(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    # Never claimed under attempt 1: the token is not a claim of it.
    refused(store, StaleClaimError, lambda: store.tasks.wait(task.id, "q", attempt=1))
    held = claim(store, run)
    refused(store, StaleClaimError, lambda: store.tasks.wait(task.id, "q", attempt=2))
    store.tasks.complete(task.id, "done", attempt=held.attempt)
    refused(store, InvalidTransitionError, lambda: store.tasks.wait(task.id, "q", attempt=1))


def test_a_wait_made_again_after_it_committed_returns_the_task(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    held = claim(store, run)
    waiting = store.tasks.wait(task.id, QUESTION, attempt=held.attempt)
    before = dump(store)
    assert store.tasks.wait(task.id, QUESTION, attempt=held.attempt) == waiting
    assert dump(store) == before
    # Answered meanwhile: the retry still returns the task as it is now.
    answered = store.tasks.answer(task.id, "yes")
    assert store.tasks.wait(task.id, QUESTION, attempt=held.attempt) == answered


def test_the_holder_cannot_end_a_claim_it_gave_up_by_asking(
    store: AgentStore, run: RunRecord
) -> None:
    task = asking(store, run)
    refused(store, InvalidTransitionError, lambda: store.tasks.complete(task.id, "d", attempt=1))
    refused(store, InvalidTransitionError, lambda: store.tasks.heartbeat(task.id, 1, HOUR))
    store.tasks.answer(task.id, "yes")
    refused(store, StaleClaimError, lambda: store.tasks.complete(task.id, "d", attempt=1))


def test_an_answer_is_decided_once(store: AgentStore, run: RunRecord) -> None:
    task = asking(store, run)
    answered = store.tasks.answer(task.id, {"approved": True, "by": "ana"})
    before = dump(store)
    # The same answer made again (its reply was lost): the task, nothing written.
    assert store.tasks.answer(task.id, {"by": "ana", "approved": True}) == answered
    assert dump(store) == before
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, {"approved": False}))
    claim(store, run)  # the answer stays the answer of that wait while the task runs
    assert store.tasks.answer(task.id, {"approved": True, "by": "ana"}).answer == answered.answer
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "another"))


def test_only_a_waiting_task_takes_an_answer(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes"))  # pending
    held = claim(store, run)
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes"))  # in progress
    store.tasks.complete(task.id, "done", attempt=held.attempt)
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes"))  # completed


def test_an_answer_to_one_wait_is_never_taken_for_the_next(
    store: AgentStore, run: RunRecord
) -> None:
    task = asking(store, run)
    assert store.tasks.answer(task.id, "yes", attempt=1).answer == "yes"
    assert store.tasks.answer(task.id, "yes", attempt=1).answer == "yes"  # a retry
    held = claim(store, run)
    store.tasks.wait(task.id, "and now?", attempt=held.attempt)
    # The first answer's retry arrives late: refused, the new question still open.
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes", attempt=1))
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes", attempt=3))
    answered = store.tasks.answer(task.id, "no", attempt=held.attempt)
    assert (answered.status, answered.answer) == (TaskStatus.PENDING, "no")
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "no", attempt=1))


def test_wait_and_answer_refuse_bad_input(store: AgentStore, run: RunRecord) -> None:
    task = plan_one(store, run)
    held = claim(store, run)
    for bad in (None, object(), {"k": float("nan")}):
        refused(
            store,
            ValidationError,
            lambda bad=bad: store.tasks.wait(task.id, bad, attempt=held.attempt),
        )
    for attempt in (0, "1", None):
        refused(
            store,
            ValidationError,
            lambda attempt=attempt: store.tasks.wait(task.id, "q", attempt=attempt),
        )
    store.tasks.wait(task.id, "q", attempt=held.attempt)
    for bad in (None, object(), b"bytes"):
        refused(store, ValidationError, lambda bad=bad: store.tasks.answer(task.id, bad))
    refused(store, ValidationError, lambda: store.tasks.answer(task.id, "a", attempt=0))
    refused(store, ValidationError, lambda: store.tasks.answer("not-an-id", "a"))
    missing = "00000000-0000-0000-0000-000000000001"
    refused(store, NotFoundError, lambda: store.tasks.answer(missing, "a"))
    refused(store, NotFoundError, lambda: store.tasks.wait(missing, "q", attempt=1))


def test_cancelling_a_waiting_task_abandons_it_at_once(store: AgentStore, run: RunRecord) -> None:
    task = asking(store, run)
    cancelled = store.tasks.cancel(task.id, "not needed")
    assert (cancelled.status, cancelled.cancel_reason) == (TaskStatus.ABANDONED, "not needed")
    assert store.tasks.cancel(task.id, "not needed") == cancelled  # a retry
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "too late"))
    assert [kind for kind, _ in events(store, run)] == ["task_waiting", "task_cancelled"]


def test_a_task_cancelled_while_held_is_abandoned_when_it_asks(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run)
    held = claim(store, run)
    store.tasks.cancel(task.id, "stop")
    ended = store.tasks.wait(task.id, "q", attempt=held.attempt)
    assert ended.status is TaskStatus.ABANDONED
    assert store.attempts.latest(task.id).status is AttemptStatus.WAITING  # type: ignore[union-attr]
    assert [kind for kind, _ in events(store, run)] == ["task_cancel_requested", "task_cancelled"]


def test_an_operator_abandons_a_waiting_task(store: AgentStore, run: RunRecord) -> None:
    task = asking(store, run)
    abandoned = store.tasks.force_abandon(task.id, "wrong plan")
    assert abandoned.status is TaskStatus.ABANDONED
    refused(store, ConflictError, lambda: store.tasks.answer(task.id, "yes"))


def test_a_new_plan_abandons_the_waiting_tasks_of_the_old(
    store: AgentStore, run: RunRecord
) -> None:
    old = asking(store, run)
    [new] = store.tasks.replace_pending(run.id, [TaskDraft("new", "o")])
    assert store.tasks.get(old.id).status is TaskStatus.ABANDONED
    assert store.tasks.get(new.id).status is TaskStatus.PENDING
    refused(store, ConflictError, lambda: store.tasks.answer(old.id, "yes"))


def test_a_snapshot_shows_the_waiting_tasks(store: AgentStore, run: RunRecord) -> None:
    task = asking(store, run)
    snapshot = store.runs.snapshot(run.id)
    assert [t.id for t in snapshot.tasks[TaskStatus.WAITING]] == [task.id]
    assert snapshot.tasks[TaskStatus.WAITING][0].question == QUESTION


def wait_and_answer(store: AgentStore, run: RunRecord, task: TaskRecord, times: int) -> None:
    for _ in range(times):
        held = claim(store, run)
        store.tasks.wait(task.id, "q", attempt=held.attempt)
        store.tasks.answer(task.id, "a")


def test_waits_do_not_use_up_attempts_when_failing(store: AgentStore, run: RunRecord) -> None:
    """Asked three times, then failed: pending again after the first retry's backoff
    (not the fourth's); another task asked twice, then failed twice of two attempts:
    blocked only then."""
    task = plan_one(store, run, max_attempts=2, backoff=Backoff(HOUR, 100 * HOUR, jitter=0))
    wait_and_answer(store, run, task, 3)
    held = claim(store, run)
    assert (held.attempt, held.waits) == (4, 3)
    failed_at = datetime.now(UTC)
    retried = store.tasks.fail(task.id, "boom", attempt=held.attempt)
    assert retried.status is TaskStatus.PENDING
    assert retried.available_at - failed_at < 2 * HOUR  # one hour: the first retry's delay
    [again] = store.tasks.replace_pending(run.id, [TaskDraft("again", "o", max_attempts=2)])
    wait_and_answer(store, run, again, 2)
    held = claim(store, run)
    first = store.tasks.fail(again.id, "boom", attempt=held.attempt, retry_in=timedelta(0))
    assert first.status is TaskStatus.PENDING
    held = claim(store, run)
    blocked = store.tasks.fail(again.id, "boom", attempt=held.attempt, retry_in=timedelta(0))
    assert (blocked.status, blocked.blocker_signature) == (
        TaskStatus.BLOCKED,
        "attempts_exhausted",
    )
    assert (blocked.attempt, blocked.waits) == (4, 2)


def test_waits_do_not_use_up_attempts_when_leases_run_out(
    store: AgentStore, run: RunRecord
) -> None:
    task = plan_one(store, run, max_attempts=2)
    wait_and_answer(store, run, task, 2)
    claim(store, run, lease=SHORT)  # attempt 3: the first that counts
    time.sleep(SHORT.total_seconds() + 0.2)
    rescued = claim(store, run, lease=SHORT)  # rescued (pending again), then claimed
    assert (rescued.id, rescued.attempt) == (task.id, 4)
    time.sleep(SHORT.total_seconds() + 0.2)
    assert store.tasks.claim_next("w", run_id=run.id) == []  # rescued, and blocked
    blocked = store.tasks.get(task.id)
    assert (blocked.status, blocked.blocker_signature) == (TaskStatus.BLOCKED, "lease_expired")


@pytest.mark.parametrize("repeat", [False, True])
def test_an_answer_made_in_a_unit_is_undone_with_it(
    store: AgentStore, run: RunRecord, repeat: bool
) -> None:
    task = asking(store, run)
    before = store.tasks.get(task.id)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), store.transaction() as tx:
        tx.tasks.answer(task.id, "yes")
        if repeat:
            assert tx.tasks.answer(task.id, "yes").status is TaskStatus.PENDING
        raise Undo
    assert store.tasks.get(task.id) == before
