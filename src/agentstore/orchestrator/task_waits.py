"""A task that waits for a person, held by nobody meanwhile: its holder asks (``wait``),
the task is ``waiting``, and a person's ``answer`` makes it pending again; the next claim
runs it with ``TaskRecord.question`` and ``answer``.

A wait ends its holder's claim as ``block`` does (fenced by the attempt, recorded and
journalled), so these operations extend ``TaskRepository`` for its private helpers; the
faces expose them as ``store.tasks.wait`` and ``answer`` (``task_extras``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.errors import ConflictError, ValidationError
from agentstore.operations import writes
from agentstore.orchestrator.task_records import TaskRecord
from agentstore.orchestrator.task_statements import ATTEMPTS, statements
from agentstore.orchestrator.tasks import NOW, TaskRepository
from agentstore.statuses import AttemptStatus, TaskStatus
from agentstore.types import SerializedJSON
from agentstore.validation import Id

#: The summary of an attempt that ended by asking (its question is its result).
ASKED = "Asked a person; the task waits for the answer."
#: How a wait is journalled: (event kind, message), by the task's new status.
_WAITED = {
    TaskStatus.WAITING: ("task_waiting", "Task asked a person; it waits for the answer."),
    TaskStatus.ABANDONED: ("task_cancelled", "Task asked a person; it was cancelled."),
}


class TaskWaits(TaskRepository):
    """The operations behind ``store.tasks.wait`` and ``store.tasks.answer``."""

    __slots__ = ()

    @writes
    def wait(self, task_id: Id, question: Any, *, attempt: int) -> TaskRecord:
        """As ``store.tasks.wait`` (``task_extras.TasksExtras.wait``)."""
        task_id = validation.identifier(task_id, "task_id")
        validation.positive_int(attempt, "attempt")  # the fencing token is required
        params = {"question": _required_json(question, "question")}
        row = self._held_update(task_id, attempt, statements(self._backend).wait, params)
        if row is None:  # a retry of this wait, or a refusal
            return self._explain(task_id, attempt, "wait", (AttemptStatus.WAITING, ASKED, None))
        kind, message = _WAITED[row.status]
        asked = {"question": question}
        self._journal_ending(row, AttemptStatus.WAITING, ASKED, None, asked, kind, message, asked)
        return row

    @writes
    def answer(self, task_id: Id, answer: Any, *, attempt: int | None = None) -> TaskRecord:
        """As ``store.tasks.answer`` (``task_extras.TasksExtras.answer``)."""
        task_id = validation.identifier(task_id, "task_id")
        given = _required_json(answer, "answer")
        params = {"answer": given, "now": self._backend.lease_parameter(NOW)}
        row = self._held_update(task_id, attempt, statements(self._backend).answer, params)
        if row is not None:
            message = "A person answered; the task is pending again."
            self._journal(row, "task_answered", message, {"answer": answer})
            return row
        current = self._get(task_id)
        repeated = current.status is not TaskStatus.WAITING and current.answer == json.loads(given)
        if repeated and (attempt is None or attempt == self._last_wait(task_id)):
            return current  # this answer to this wait committed already (a lost reply)
        if current.status is TaskStatus.WAITING:
            reason = f"it now waits for the answer to attempt {current.attempt}'s question"
        elif current.answer is not None:
            reason = "it was answered already"
        else:
            reason = f"it is not waiting ({current.status.value})"
        raise ConflictError(f"cannot answer task {task_id}: {reason}")

    def _last_wait(self, task_id: UUID) -> int | None:
        """The attempt of the task's latest wait (the one its ``answer`` answers)."""
        latest: int | None = self._connection.execute(
            sa.select(sa.func.max(ATTEMPTS.c.attempt)).where(
                ATTEMPTS.c.task_id == task_id,
                ATTEMPTS.c.status == AttemptStatus.WAITING.value,
            )
        ).scalar_one()
        return latest


def _required_json(value: Any, name: str) -> SerializedJSON:
    """``value`` serialised; JSON null is refused (it would read as "not given")."""
    checked = validation.json_value(value, name)
    if checked is None:
        raise ValidationError(f"{name} is required (JSON null is not one)")
    return checked
