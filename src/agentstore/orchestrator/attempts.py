"""Task attempts: one record per task and ``attempt`` (its fencing token then), how that
attempt ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.errors import NotFoundError, ValidationError
from agentstore.models import Task, TaskAttempt, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.common import latest_of_run, latest_oldest_first
from agentstore.records import from_row
from agentstore.statuses import AttemptStatus
from agentstore.validation import Id

ATTEMPT_COLUMNS = tuple(TaskAttempt.__table__.c)
ATTEMPTS = core_table(TaskAttempt)
_LATEST = latest_of_run(ATTEMPTS, ATTEMPTS.c.created_at, ATTEMPTS.c.id)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: UUID
    run_id: UUID
    task_id: UUID
    attempt: int
    status: AttemptStatus
    summary: str
    blocker_signature: str | None
    result: Any
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> AttemptRecord:
        return from_row(cls, row._mapping, status=AttemptStatus(row.status))


class AttemptRepository(Repository, aggregate="attempts"):
    """``store.attempts``: how each attempt at a task ended."""

    __slots__ = ()

    @writes
    def add(
        self,
        run_id: Id,
        task_id: Id,
        attempt: int,
        status: str,
        summary: str,
        *,
        result: Any = None,
        blocker_signature: str | None = None,
    ) -> AttemptRecord:
        """Record how attempt ``attempt`` of the task ended (``complete``,
        ``block``, ``fail`` and ``abandon`` record their own; this is for attempts that
        ended otherwise). Raises ``ConflictError`` (that attempt is already recorded),
        ``NotFoundError`` (no such task), ``ValidationError`` (the task is of another
        run, or was never claimed that often)."""
        run_id = validation.identifier(run_id, "run_id")
        task_id = validation.identifier(task_id, "task_id")
        values = {
            "run_id": run_id,
            "task_id": task_id,
            "attempt": validation.positive_int(attempt, "attempt"),
            "status": validation.status(status, AttemptStatus).value,
            "summary": validation.text(summary, TaskAttempt.summary, required=False),
            "blocker_signature": validation.optional_text(
                blocker_signature, TaskAttempt.blocker_signature
            ),
            "result": validation.json_value({} if result is None else result, "result"),
        }
        task = self._connection.execute(
            sa.select(Task.run_id, Task.attempt).where(Task.id == task_id)
        ).first()
        if task is None:
            raise NotFoundError(f"task {task_id} not found")
        if task.run_id != run_id:
            raise ValidationError(f"task {task_id} belongs to run {task.run_id}, not {run_id}")
        if values["attempt"] > task.attempt:
            raise ValidationError(
                f"task {task_id} was claimed {task.attempt} times: it has no attempt "
                f"{values['attempt']}"
            )
        statement = sa.insert(TaskAttempt).values(values).returning(*ATTEMPT_COLUMNS)
        return AttemptRecord.from_row(self._connection.execute(statement).one())

    @reads
    def latest(self, task_id: Id) -> AttemptRecord | None:
        """The task's highest-numbered attempt, or None."""
        query = (
            sa.select(*ATTEMPT_COLUMNS)
            .where(TaskAttempt.task_id == validation.identifier(task_id, "task_id"))
            .order_by(TaskAttempt.attempt.desc())
            .limit(1)
        )
        row = self._connection.execute(query).first()
        return None if row is None else AttemptRecord.from_row(row)

    @reads
    def recent(self, run_id: Id, limit: int = 12) -> list[AttemptRecord]:
        """The run's ``limit`` most recent attempts, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        run_id = validation.identifier(run_id, "run_id")
        return latest_oldest_first(
            self._connection, _LATEST, run_id, limit, AttemptRecord, status=AttemptStatus
        )
