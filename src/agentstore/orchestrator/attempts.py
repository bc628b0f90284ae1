"""Task attempts: one record per task and attempt number, how that attempt ended."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agentstore import validation
from agentstore.boundary import Transactions
from agentstore.models import TaskAttempt
from agentstore.orchestrator.common import latest_oldest_first
from agentstore.records import from_row
from agentstore.statuses import AttemptStatus

ATTEMPT_COLUMNS = tuple(TaskAttempt.__table__.c)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: uuid.UUID
    run_id: uuid.UUID
    task_id: uuid.UUID
    attempt_number: int
    status: AttemptStatus
    summary: str
    blocker_signature: str | None
    result: Any
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> AttemptRecord:
        return from_row(cls, row._mapping, status=AttemptStatus(row.status))


class AttemptRepository:
    """``store.attempts``."""

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions

    def add(
        self,
        run_id: uuid.UUID,
        task_id: uuid.UUID,
        attempt_number: int,
        status: str,
        summary: str,
        *,
        result: Any = None,
        blocker_signature: str | None = None,
    ) -> AttemptRecord:
        """Record how attempt ``attempt_number`` of the task ended. Raises
        ``ConflictError`` (that attempt is already recorded), ``NotFoundError`` (no such
        run or task), ``ValidationError``."""
        values = {
            "run_id": run_id,
            "task_id": task_id,
            "attempt_number": validation.positive_int(attempt_number, "attempt_number"),
            "status": validation.status(status, AttemptStatus).value,
            "summary": validation.text(summary, TaskAttempt.summary, required=False),
            "blocker_signature": validation.optional_text(
                blocker_signature, TaskAttempt.blocker_signature
            ),
            "result": validation.json_value({} if result is None else result, "result"),
        }
        statement = sa.insert(TaskAttempt).values(values).returning(*ATTEMPT_COLUMNS)
        with self._tx.write() as connection:
            return AttemptRecord.from_row(connection.execute(statement).one())

    def latest(self, task_id: uuid.UUID) -> AttemptRecord | None:
        """The task's highest-numbered attempt, or None."""
        query = (
            sa.select(*ATTEMPT_COLUMNS)
            .where(TaskAttempt.task_id == task_id)
            .order_by(TaskAttempt.attempt_number.desc())
            .limit(1)
        )
        with self._tx.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else AttemptRecord.from_row(row)

    def recent(self, run_id: uuid.UUID, limit: int = 12) -> list[AttemptRecord]:
        """The run's ``limit`` most recent attempts, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        query = sa.select(*ATTEMPT_COLUMNS).where(TaskAttempt.run_id == run_id)
        newest_first = [TaskAttempt.created_at.desc(), TaskAttempt.id.desc()]
        with self._tx.read() as connection:
            rows = latest_oldest_first(connection, query, newest_first, limit)
        return [AttemptRecord.from_row(row) for row in rows]
