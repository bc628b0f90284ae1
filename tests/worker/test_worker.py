"""The worker runtime on both faces and both dialects: outcomes, backoff, schedules,
cancellation, paused runs, lost leases and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentstore import AgentStore, Backoff, RunRecord, TaskDraft, TaskStatus
from agentstore.errors import ValidationError
from agentstore.statuses import AttemptStatus
from agentstore.worker import Block, Retry, TaskContext, Worker
from tests.worker.conftest import WorkerOnFace

NO_WAIT = Backoff(first=timedelta(0), cap=timedelta(0))


def plan(store: AgentStore, run: RunRecord, count: int = 1, **fields: Any) -> list[Any]:
    drafts = [TaskDraft(f"task {n}", "o", **fields) for n in range(count)]
    return store.tasks.replace_pending(run.id, drafts)


def kinds(store: AgentStore, run: RunRecord) -> list[str]:
    return [event.kind for event in store.events.list(run.id, limit=1000)][1:]


def statuses(store: AgentStore, run: RunRecord) -> list[TaskStatus]:
    return [task.status for task in store.tasks.list(run.id)]


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
def test_a_worker_drains_a_run(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, handler_kind: str
) -> None:
    plan(sync_store, run, 20)
    seen: list[str] = []

    def sync_handler(context: TaskContext) -> Any:
        seen.append(context.task.title)
        return {"title": context.task.title}

    async def async_handler(context: TaskContext) -> str:
        await asyncio.sleep(0)
        seen.append(context.task.title)
        return f"did {context.task.title}"

    handler = sync_handler if handler_kind == "sync" else async_handler
    counters = workers.run(handler, run_id=run.id, concurrency=4, batch=3)
    assert counters.claimed == counters.completed == 20
    assert sorted(seen) == sorted(f"task {n}" for n in range(20))
    assert set(statuses(sync_store, run)) == {TaskStatus.COMPLETED}
    attempts = sync_store.attempts.recent(run.id, limit=100)
    assert len(attempts) == 20 and {a.status for a in attempts} == {AttemptStatus.COMPLETED}
    if handler_kind == "sync":
        assert {a.result["title"] for a in attempts} == set(seen)
    else:
        assert {t.implementation_summary for t in sync_store.tasks.list(run.id)} == {
            f"did {title}" for title in seen
        }


def test_a_failing_handler_is_retried_after_its_backoff(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    """Failing twice, then succeeding: each retry starts no sooner than the policy's
    delay after the failure before it."""
    backoff = Backoff(first=timedelta(milliseconds=300), cap=timedelta(seconds=5))
    plan(sync_store, run, backoff=backoff)
    failed_at: list[datetime] = []
    started_at: list[datetime] = []

    def handler(context: TaskContext) -> str:
        started_at.append(datetime.now(UTC))
        if context.task.attempt < 3:
            failed_at.append(datetime.now(UTC))
            raise RuntimeError(f"boom {context.task.attempt}")
        return "third time lucky"

    counters = workers.run(handler, run_id=run.id)
    assert (counters.failed, counters.retried, counters.completed) == (2, 2, 1)
    for retry in (1, 2):
        assert started_at[retry] - failed_at[retry - 1] >= backoff.base_delay(retry)
    attempts = sync_store.attempts.recent(run.id)
    assert [a.status for a in attempts] == [
        AttemptStatus.FAILED,
        AttemptStatus.FAILED,
        AttemptStatus.COMPLETED,
    ]
    assert "RuntimeError: boom 1" in attempts[0].summary
    assert kinds(sync_store, run) == [
        "task_retry_scheduled",
        "task_retry_scheduled",
        "task_completed",
    ]


def test_failures_up_to_max_attempts_block_the_task(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    [task] = plan(sync_store, run, max_attempts=3)

    def handler(context: TaskContext) -> None:
        raise ValueError("always")

    counters = workers.run(handler, run_id=run.id, backoff=NO_WAIT)
    assert (counters.failed, counters.retried, counters.blocked) == (3, 2, 1)
    blocked = sync_store.tasks.get(task.id)
    assert (blocked.status, blocked.blocker_signature) == (TaskStatus.BLOCKED, "attempts_exhausted")
    assert kinds(sync_store, run)[-1] == "task_blocked"


def test_retry_and_block_are_explicit_outcomes(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    retried, blocked = plan(sync_store, run, 2)

    def handler(context: TaskContext) -> str:
        if context.task.id == blocked.id:
            raise Block("needs a person", signature="needs-approval")
        if context.task.attempt == 1:
            raise Retry("not yet", after=timedelta(milliseconds=100))
        return "done"

    counters = workers.run(handler, run_id=run.id)
    assert (counters.completed, counters.retried, counters.blocked) == (1, 1, 1)
    assert sync_store.tasks.get(retried.id).attempt == 2
    ended = sync_store.tasks.get(blocked.id)
    assert (ended.status, ended.blocker_signature) == (TaskStatus.BLOCKED, "needs-approval")


def test_a_result_that_is_not_json_fails_the_attempt(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    [task] = plan(sync_store, run, max_attempts=1)
    counters = workers.run(lambda context: {"not json": object()}, run_id=run.id)
    assert counters.blocked == 1 and counters.completed == 0
    assert "result was refused" in sync_store.attempts.latest(task.id).summary  # type: ignore[union-attr]


def test_a_scheduled_task_is_worked_when_it_is_due(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    [task] = plan(sync_store, run, delay=timedelta(milliseconds=400))
    worked_at: list[datetime] = []
    counters = workers.run(lambda context: worked_at.append(datetime.now(UTC)), run_id=run.id)
    assert counters.completed == 1
    assert worked_at[0] >= task.available_at


def test_a_paused_runs_tasks_wait_for_resume(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    plan(sync_store, run, 3)
    sync_store.runs.pause(run.id)
    assert workers.run(lambda context: "done", run_id=run.id).claimed == 0
    assert workers.run(lambda context: "done").claimed == 0  # across runs too
    sync_store.runs.resume(run.id)
    assert workers.run(lambda context: "done", run_id=run.id).completed == 3


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the worker never got there"
        time.sleep(0.02)


def handler_until_cancelled(face: str, started: threading.Event) -> Any:
    """A long handler that stops when told: cancelled as an asyncio task, or by checking
    ``context.cancelled`` in a thread."""
    if face == "async":

        async def wait_forever(context: TaskContext) -> str:
            started.set()
            await asyncio.sleep(3600)
            return "never"

        return wait_forever

    def check_until_cancelled(context: TaskContext) -> str:
        started.set()
        while not context.sleep(0.02):
            pass
        return "discarded"

    return check_until_cancelled


def test_cancelling_a_running_task_stops_its_handler(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, face: str
) -> None:
    [task] = plan(sync_store, run)
    started = threading.Event()
    handler = handler_until_cancelled(face, started)
    with workers.background(handler, run_id=run.id, lease=timedelta(milliseconds=600)) as stop:
        assert started.wait(30)
        sync_store.tasks.cancel(task.id, "no longer needed")
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.ABANDONED)
        counters = stop()
    assert counters.cancelled == 1 and counters.completed == 0
    assert kinds(sync_store, run) == ["task_cancel_requested", "task_abandoned"]


def test_a_cancelled_pending_task_is_never_worked(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    [task, _] = plan(sync_store, run, 2)
    sync_store.tasks.cancel(task.id, "dropped")
    assert workers.run(lambda context: "done", run_id=run.id).completed == 1


def test_a_lost_lease_discards_the_result_and_the_task_is_worked_again(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, face: str
) -> None:
    [task] = plan(sync_store, run)
    started = threading.Event()
    slow = handler_until_cancelled(face, started)

    def handler(context: TaskContext) -> Any:
        return slow(context) if context.task.attempt == 1 else "second attempt"

    if face == "async":

        async def handler(context: TaskContext) -> Any:  # type: ignore[misc]
            if context.task.attempt == 1:
                return await slow(context)
            return "second attempt"

    lease = timedelta(milliseconds=600)
    with workers.background(handler, run_id=run.id, lease=lease) as stop:
        assert started.wait(30)
        sync_store.tasks.requeue_in_progress(run.id)  # the claim is taken away
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED)
        counters = stop()
    assert counters.lost_leases == 1 and counters.completed == 1
    done = sync_store.tasks.get(task.id)
    assert (done.attempt, done.implementation_summary) == (2, "second attempt")


def test_stopping_hands_back_what_does_not_finish_within_grace(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, face: str
) -> None:
    plan(sync_store, run, 3)
    started = threading.Event()
    handler = handler_until_cancelled(face, started)
    options = {"concurrency": 2, "grace": timedelta(milliseconds=200)}
    with workers.background(handler, run_id=run.id, **options) as stop:
        assert started.wait(30)
        wait_for(lambda: len(sync_store.tasks.list(run.id, ["in_progress"])) == 2)
        counters = stop()
    assert counters.handed_back == 2 and counters.claimed == 2
    assert statuses(sync_store, run) == [TaskStatus.PENDING] * 3
    assert kinds(sync_store, run) == ["task_released", "task_released"]
    again = sync_store.tasks.claim_next("w", run_id=run.id, limit=3)
    assert len(again) == 3


def test_stopping_lets_running_handlers_finish_within_grace(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    plan(sync_store, run, 1)
    started = threading.Event()

    def handler(context: TaskContext) -> str:
        started.set()
        time.sleep(0.3)
        return "finished in time"

    with workers.background(handler, run_id=run.id, grace=timedelta(seconds=30)) as stop:
        assert started.wait(30)
        counters = stop()
    assert counters.completed == 1 and counters.handed_back == 0
    assert statuses(sync_store, run) == [TaskStatus.COMPLETED]


def test_bad_worker_settings_are_refused(sync_store: AgentStore) -> None:
    for bad in (
        {"concurrency": 0},
        {"batch": 0},
        {"lease": timedelta(0)},
        {"run_id": "not-a-uuid"},
        {"backoff": 3},
        {"name": ""},
    ):
        with pytest.raises(ValidationError):
            Worker(sync_store, lambda context: None, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Worker(sync_store, "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Worker("not a store", lambda context: None)  # type: ignore[arg-type]


def test_log_records_name_the_worker_task_and_attempt(
    workers: WorkerOnFace,
    sync_store: AgentStore,
    run: RunRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    [task] = plan(sync_store, run, max_attempts=1)

    def handler(context: TaskContext) -> None:
        raise ValueError("logged")

    with caplog.at_level(logging.INFO, logger="agentstore.worker"):
        workers.run(handler, run_id=run.id, name="logging-worker")
    [failure] = [r for r in caplog.records if r.getMessage().startswith("task ")]
    assert (failure.worker, failure.task_id, failure.attempt) == (  # type: ignore[attr-defined]
        "logging-worker",
        str(task.id),
        1,
    )
    [stopped] = [r for r in caplog.records if " stopped: " in r.getMessage()]
    assert stopped.blocked == 1  # type: ignore[attr-defined]
