"""A handler that needs a person raises ``Wait``: the task waits, held by nobody, the
worker's slot goes to other work, and once someone answers (from another thread, or
another process) the task is claimed again and its handler reads the answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from agentstore import AgentStore, RunRecord, TaskStatus
from agentstore.statuses import AttemptStatus
from agentstore.worker import TaskContext, Wait
from tests.cli.conftest import REPO
from tests.worker.conftest import WorkerOnFace
from tests.worker.test_worker import NO_WAIT, kinds, plan, wait_for

QUESTION = {"approve": "deploy?"}


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
def test_a_waiting_task_frees_its_slot_and_resumes_with_the_answer(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, handler_kind: str
) -> None:
    asks, other = plan(sync_store, run, 2)
    answers_seen: list[Any] = []

    def work(context: TaskContext) -> str:
        task = context.task
        if task.id == asks.id:
            if task.answer is None:
                raise Wait(QUESTION)
            answers_seen.append((task.question, task.answer, task.attempt))
            return f"approved by {task.answer['by']}"
        return "other work"

    async def work_async(context: TaskContext) -> str:
        await asyncio.sleep(0)
        return work(context)

    handler = work if handler_kind == "sync" else work_async
    # One slot: the other task is worked only because the waiting one gave it up.
    with workers.background(handler, run_id=run.id, concurrency=1) as stop:
        wait_for(lambda: sync_store.tasks.get(other.id).status is TaskStatus.COMPLETED)
        waiting = sync_store.tasks.get(asks.id)
        assert waiting.status is TaskStatus.WAITING and waiting.claimed_by is None
        assert waiting.question == QUESTION
        sync_store.tasks.answer(asks.id, {"by": "ana"}, attempt=waiting.attempt)  # a person
        wait_for(lambda: sync_store.tasks.get(asks.id).status is TaskStatus.COMPLETED)
        counters = stop()
    assert (counters.claimed, counters.waiting, counters.completed) == (3, 1, 2)
    assert answers_seen == [(QUESTION, {"by": "ana"}, 2)]
    assert sync_store.tasks.get(asks.id).implementation_summary == "approved by ana"
    attempts = [
        (a.attempt, a.status) for a in sync_store.attempts.recent(run.id) if a.task_id == asks.id
    ]
    assert attempts == [(1, AttemptStatus.WAITING), (2, AttemptStatus.COMPLETED)]
    journal = kinds(sync_store, run)
    assert journal.index("task_waiting") < journal.index("task_answered")


def test_an_answer_from_another_process_resumes_the_task(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, db_url: str
) -> None:
    [task] = plan(sync_store, run)

    def handler(context: TaskContext) -> str:
        if context.task.answer is None:
            raise Wait(QUESTION)
        return f"answered {context.task.answer}"

    with workers.background(handler, run_id=run.id) as stop:
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.WAITING)
        command = ["--url", db_url, "tasks", "answer", str(task.id), '"yes"']
        answered = subprocess.run(
            [sys.executable, "-m", "agentstore", *command],
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if k != "AGENTSTORE_SCHEMA"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert answered.returncode == 0, answered.stderr
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED)
        stop()
    assert sync_store.tasks.get(task.id).implementation_summary == "answered yes"


def test_waits_do_not_use_up_the_attempts_of_a_worked_task(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    """Two attempts allowed: it asks, then fails once, then succeeds."""
    [task] = plan(sync_store, run, max_attempts=2)

    def handler(context: TaskContext) -> str:
        if context.task.answer is None:
            raise Wait("may I?")
        if context.task.attempt == 2:
            raise RuntimeError("flaky")
        return "done"

    asked = workers.run(handler, run_id=run.id, backoff=NO_WAIT)  # until idle: it waits
    assert (asked.claimed, asked.waiting) == (1, 1)
    sync_store.tasks.answer(task.id, "yes")
    counters = workers.run(handler, run_id=run.id, backoff=NO_WAIT)
    assert (counters.failed, counters.retried, counters.completed) == (1, 1, 1)
    done = sync_store.tasks.get(task.id)
    assert (done.status, done.attempt, done.waits) == (TaskStatus.COMPLETED, 3, 1)


def test_a_question_that_is_not_json_fails_the_attempt(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord
) -> None:
    [task] = plan(sync_store, run, max_attempts=1)

    def handler(context: TaskContext) -> None:
        raise Wait(object())

    counters = workers.run(handler, run_id=run.id)
    assert (counters.waiting, counters.failed, counters.blocked) == (0, 1, 1)
    assert "question was refused" in sync_store.attempts.latest(task.id).summary  # type: ignore[union-attr]
