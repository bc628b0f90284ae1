"""Property-based: random sequences of task operations, with right and stale tokens,
against a plain in-memory model of the task state machine. The store must agree with the
model after every step, and refuse exactly what the model refuses: an ending made again
under the same attempt is a retry, which returns the task as it is, and so is an answer
made again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agentstore import AgentStore, TaskDraft, TaskStatus
from agentstore.errors import (
    ConflictError,
    InvalidTransitionError,
    StaleClaimError,
    ValidationError,
)

LEASE = timedelta(minutes=5)


@dataclass
class ModelTask:
    position: int
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    ended: dict[int, str] = field(default_factory=dict)  # attempt -> how it was ended
    answer: str | None = None  # the answer to its latest wait


class TaskMachine(RuleBasedStateMachine):
    """Drives ``store.tasks`` for one run; a fresh run per example."""

    store: AgentStore  # set by the test before running

    @initialize()
    def new_run(self) -> None:
        self.run_id = self.store.runs.create("model-checked", "/repo").id
        self.model: dict[uuid.UUID, ModelTask] = {}

    def _ids(self) -> list[uuid.UUID]:
        return sorted(self.model, key=lambda task_id: self.model[task_id].position)

    @rule(count=st.integers(min_value=0, max_value=4))
    def replace_plan(self, count: int) -> None:
        for task in self.model.values():
            if task.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.WAITING):
                task.status = TaskStatus.ABANDONED
        drafts = [TaskDraft(f"t{n}", "o") for n in range(count)]
        start = len(self.model)
        for offset, task in enumerate(self.store.tasks.replace_pending(self.run_id, drafts)):
            self.model[task.id] = ModelTask(position=start + offset)

    @rule(limit=st.integers(min_value=1, max_value=3))
    def claim(self, limit: int) -> None:
        pending = [i for i in self._ids() if self.model[i].status == TaskStatus.PENDING]
        expected = pending[:limit]
        claimed = self.store.tasks.claim_next("w", run_id=self.run_id, lease=LEASE, limit=limit)
        assert [task.id for task in claimed] == expected
        for task_id in expected:
            self.model[task_id].status = TaskStatus.IN_PROGRESS
            self.model[task_id].attempts += 1

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        action=st.sampled_from(["complete", "block", "abandon", "heartbeat", "wait"]),
        token=st.sampled_from(["current", "stale", "none"]),
    )
    def finish(self, data: st.DataObject, action: str, token: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        task = self.model[task_id]
        attempt = {"current": task.attempts, "stale": task.attempts - 1, "none": None}[token]
        if action == "heartbeat" and attempt is None:
            attempt = task.attempts
        if attempt is not None and attempt < 1:
            return  # never claimed: no token to hold
        expected = self._expected(task, action, attempt)
        call = {
            "complete": lambda: self.store.tasks.complete(task_id, "s", attempt=attempt),
            "block": lambda: self.store.tasks.block(task_id, "s", "sig", attempt=attempt),
            "abandon": lambda: self.store.tasks.abandon(task_id, "s", attempt=attempt),
            "heartbeat": lambda: self.store.tasks.heartbeat(task_id, attempt or 0, LEASE),
            "wait": lambda: self.store.tasks.wait(task_id, "q", attempt=attempt),
        }[action]
        if isinstance(expected, type):
            with pytest.raises(expected):
                call()
        else:
            assert call().status == expected
            if expected != task.status and attempt is not None and action != "heartbeat":
                task.ended[attempt] = action
                if action == "wait":
                    task.answer = None
            task.status = expected

    @staticmethod
    def _expected(
        task: ModelTask, action: str, attempt: int | None
    ) -> TaskStatus | type[Exception]:
        held = task.status == TaskStatus.IN_PROGRESS
        if attempt is None and action in ("complete", "block", "abandon", "wait"):
            return ValidationError  # the fencing token is required
        if attempt is not None and task.ended.get(attempt) == action:
            return task.status  # a retry: the task as it is
        allowed = (TaskStatus.IN_PROGRESS,)
        if attempt is not None and (
            attempt != task.attempts or task.status in (TaskStatus.PENDING, TaskStatus.ABANDONED)
        ):
            return StaleClaimError
        if task.status not in allowed:
            return InvalidTransitionError
        assert held
        return {
            "complete": TaskStatus.COMPLETED,
            "block": TaskStatus.BLOCKED,
            "abandon": TaskStatus.ABANDONED,
            "heartbeat": TaskStatus.IN_PROGRESS,
            "wait": TaskStatus.WAITING,
        }[action]

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), answer=st.sampled_from(["yes", "no"]))
    def answer(self, data: st.DataObject, answer: str) -> None:
        task_id = data.draw(st.sampled_from(self._ids()))
        task = self.model[task_id]
        if task.status == TaskStatus.WAITING:
            assert self.store.tasks.answer(task_id, answer).status == TaskStatus.PENDING
            task.status, task.answer = TaskStatus.PENDING, answer
        elif task.answer == answer:  # the same answer made again: the task as it is
            assert self.store.tasks.answer(task_id, answer).status == task.status
        else:
            with pytest.raises(ConflictError):
                self.store.tasks.answer(task_id, answer)

    @rule()
    def requeue(self) -> None:
        held = [t for t in self.model.values() if t.status == TaskStatus.IN_PROGRESS]
        assert self.store.tasks.requeue_in_progress(self.run_id) == len(held)
        for task in held:
            task.status = TaskStatus.PENDING

    @invariant()
    def store_agrees_with_model(self) -> None:
        if not hasattr(self, "model"):
            return
        tasks = self.store.tasks.list(self.run_id)
        assert [t.id for t in tasks] == self._ids()
        for task in tasks:
            assert (task.status, task.attempt) == (
                self.model[task.id].status,
                self.model[task.id].attempts,
            )


def test_the_store_follows_the_task_state_machine(store: AgentStore) -> None:
    TaskMachine.store = store
    runner = TaskMachine.TestCase()
    runner.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    runner.runTest()
