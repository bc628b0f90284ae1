"""Runs: one orchestrator run toward a goal, with its counters and current task."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import cursors, validation
from agentstore.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from agentstore.models import Run, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.common import insert_events, require_run
from agentstore.orchestrator.snapshot import RunSnapshot, SnapshotLimits, read_snapshot
from agentstore.records import UNSET, Unset, from_row
from agentstore.statuses import RunStatus
from agentstore.validation import Id

RUN_COLUMNS = tuple(Run.__table__.c)
RUNS = core_table(Run)
# Built once, with a bound parameter: every snapshot, and many checks, read a run by id.
_BY_ID = sa.select(*RUN_COLUMNS).where(RUNS.c.id == sa.bindparam("run_id"))
NEWEST_FIRST = "runs:created_at:desc"
# The statuses a run can be paused from: it has not ended.
LIVE = (RunStatus.PLANNING, RunStatus.RUNNING, RunStatus.BLOCKED, RunStatus.PAUSED)
ENDED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: UUID
    goal: str
    repo_path: str
    status: RunStatus
    summary: str | None
    cycle_count: int
    replan_count: int
    current_task_id: UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        return from_row(cls, row._mapping, status=RunStatus(row.status))


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs, newest first; pass ``next_cursor`` for the next (None: the end)."""

    items: list[RunRecord]
    next_cursor: str | None


class RunRepository(Repository, aggregate="runs"):
    """``store.runs``: orchestrator runs, each with everything under it."""

    __slots__ = ()

    @writes
    def create(self, goal: str, repo_path: str, status: str = RunStatus.PLANNING) -> RunRecord:
        """Start a run (journalling ``run_created``). Raises ``ValidationError``."""
        values = {
            "goal": validation.text(goal, Run.goal),
            "repo_path": validation.text(repo_path, Run.repo_path),
            "status": validation.status(status, RunStatus).value,
        }
        connection = self._connection
        row = connection.execute(sa.insert(Run).values(values).returning(*RUN_COLUMNS)).one()
        insert_events(
            connection,
            self._backend,
            [
                {
                    "run_id": row.id,
                    "source": "system",
                    "kind": "run_created",
                    "message": "Run created.",
                    "payload": {"goal": goal, "repo_path": repo_path},
                }
            ],
        )
        return RunRecord.from_row(row)

    @reads
    def get(self, run_id: Id) -> RunRecord:
        """The run. Raises ``NotFoundError``."""
        run_id = validation.identifier(run_id, "run_id")
        row = self._connection.execute(_BY_ID, {"run_id": run_id}).first()
        if row is None:
            raise NotFoundError(f"run {run_id} not found")
        return RunRecord.from_row(row)

    @reads
    def list(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> RunPage:
        """Runs newest first, optionally of one status, ``limit`` at a time (keyset
        pagination: pages stay correct while runs are added). Raises ``ValidationError``
        (bad status, limit or cursor)."""
        validation.positive_int(limit, "limit", maximum=1000)
        query = sa.select(*RUN_COLUMNS)
        if status is not None:
            query = query.where(Run.status == validation.status(status, RunStatus).value)
        if cursor is not None:
            created_at, run_id = cursors.decode(cursor, NEWEST_FIRST, 2)
            try:
                after = (datetime.fromisoformat(created_at), uuid.UUID(run_id))
            except (TypeError, ValueError, AttributeError):
                raise ValidationError("malformed cursor") from None
            if after[0].tzinfo is None:
                raise ValidationError("malformed cursor")
            query = query.where(sa.tuple_(Run.created_at, Run.id) < sa.tuple_(*after))
        query = query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)
        items = [RunRecord.from_row(row) for row in self._connection.execute(query)]
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            next_cursor = cursors.encode(NEWEST_FIRST, [last.created_at.isoformat(), str(last.id)])
        return RunPage(items, next_cursor)

    @writes
    def update(
        self,
        run_id: Id,
        *,
        status: str | Unset = UNSET,
        summary: str | Unset | None = UNSET,
        current_task_id: Id | Unset | None = UNSET,
    ) -> RunRecord:
        """Change the fields given (``None`` clears summary or current task). A run that
        has not ended may take any status; an ended one (completed, failed, cancelled)
        keeps its status until ``reopen`` (setting the status it has is a no-op, so a
        retry is safe). Raises ``InvalidTransitionError``, ``NotFoundError`` (run, or
        current task), ``ValidationError``."""
        values: dict[str, Any] = {}
        if not isinstance(status, Unset):
            values["status"] = validation.status(status, RunStatus).value
        if not isinstance(summary, Unset):
            values["summary"] = validation.optional_text(summary, Run.summary)
        if not isinstance(current_task_id, Unset):
            values["current_task_id"] = validation.optional_identifier(
                current_task_id, "current_task_id"
            )
        if "status" not in values:
            return self._update(run_id, values)
        run_id = validation.identifier(run_id, "run_id")
        allowed = sa.or_(Run.status.in_([s.value for s in LIVE]), Run.status == values["status"])
        updated = self._update_if(run_id, values, allowed)
        if updated is None:
            current = self.get(run_id)
            raise InvalidTransitionError(
                f"run {run_id} has ended ({current.status.value}): reopen it first",
                status=current.status.value,
            )
        return updated

    @writes
    def reopen(self, run_id: Id, status: str = RunStatus.PLANNING) -> RunRecord:
        """Take a run that has ended (completed, failed, cancelled) back to ``status``
        (planning or running), journalling ``run_reopened``. Raises
        ``InvalidTransitionError`` (the run has not ended), ``NotFoundError``,
        ``ValidationError``."""
        to = validation.status(status, RunStatus)
        if to not in (RunStatus.PLANNING, RunStatus.RUNNING):
            raise ValidationError(f"a run reopens to planning or running, not {to.value!r}")
        return self._move(run_id, to, ENDED, "run_reopened", "Run reopened.")

    @writes
    def pause(self, run_id: Id) -> RunRecord:
        """Pause the run: its tasks are not claimed until ``resume`` (tasks already held
        go on). Journals ``run_paused``. Raises ``InvalidTransitionError`` (the run has
        ended), ``NotFoundError``."""
        return self._move(run_id, RunStatus.PAUSED, LIVE, "run_paused", "Run paused.")

    @writes
    def resume(self, run_id: Id) -> RunRecord:
        """Resume a paused run (``running`` again; its tasks are claimed again).
        Journals ``run_resumed``. Raises ``InvalidTransitionError`` (not paused),
        ``NotFoundError``."""
        paused = (RunStatus.PAUSED,)
        return self._move(run_id, RunStatus.RUNNING, paused, "run_resumed", "Run resumed.")

    @writes
    def increment_cycle(self, run_id: Id, *, expected: int | None = None) -> RunRecord:
        """Add one to the run's cycle count, atomically. With ``expected`` (the count the
        caller saw) the add is safe to repeat: the count becomes ``expected + 1`` if it
        was ``expected``, and is left alone if it already is ``expected + 1`` (a retry
        after a lost reply). Raises ``ConflictError`` (another count),
        ``NotFoundError``, ``ValidationError``."""
        return self._increment(run_id, "cycle_count", expected)

    @writes
    def increment_replan(self, run_id: Id, *, expected: int | None = None) -> RunRecord:
        """Add one to the run's replan count, atomically; ``expected`` as in
        ``increment_cycle``. Raises ``ConflictError``, ``NotFoundError``,
        ``ValidationError``."""
        return self._increment(run_id, "replan_count", expected)

    def _increment(self, run_id: Id, name: str, expected: int | None) -> RunRecord:
        column = Run.__table__.c[name]
        if expected is None:
            return self._update(run_id, {name: column + 1})
        seen = validation.positive_int(expected, "expected", minimum=0, maximum=2**31 - 2)
        run_id = validation.identifier(run_id, "run_id")
        updated = self._update_if(run_id, {name: seen + 1}, column == seen)
        if updated is not None:
            return updated
        current = self.get(run_id)
        if getattr(current, name) == seen + 1:
            return current  # a retry: the add committed before
        raise ConflictError(f"run {run_id}: {name} is {getattr(current, name)}, not {seen}")

    @writes
    def delete(self, run_id: Id) -> None:
        """Delete the run and everything that belongs to it. Raises ``NotFoundError``."""
        run_id = validation.identifier(run_id, "run_id")
        require_run(self._connection, run_id)
        self._connection.execute(sa.delete(Run).where(Run.id == run_id))

    @reads
    def snapshot(self, run_id: Id, limits: SnapshotLimits | None = None) -> RunSnapshot:
        """Everything about the run at one instant (see ``RunSnapshot``), read in one
        transaction, each list at most as long as ``limits`` says (``SnapshotLimits()``
        by default); ``truncated`` names the lists that had more. Raises
        ``NotFoundError``, ``ValidationError``."""
        if limits is None:
            limits = SnapshotLimits()
        elif not isinstance(limits, SnapshotLimits):
            raise ValidationError(f"limits must be SnapshotLimits, got {type(limits).__name__}")
        return read_snapshot(self._connection, self._backend, self.get(run_id), limits.checked())

    def _move(
        self,
        run_id: Id,
        to: RunStatus,
        from_statuses: tuple[RunStatus, ...],
        kind: str,
        message: str,
    ) -> RunRecord:
        run_id = validation.identifier(run_id, "run_id")
        moved = self._update_if(
            run_id, {"status": to.value}, Run.status.in_([s.value for s in from_statuses])
        )
        if moved is None:
            current = self.get(run_id)
            raise InvalidTransitionError(
                f"cannot move run {run_id} to {to.value}: it is {current.status.value}",
                status=current.status.value,
            )
        event = {"run_id": run_id, "source": "system", "kind": kind, "message": message}
        insert_events(self._connection, self._backend, [event])
        return moved

    def _update(self, run_id: Id, values: dict[str, Any]) -> RunRecord:
        run_id = validation.identifier(run_id, "run_id")
        updated = self._update_if(run_id, values)
        if updated is None:
            raise NotFoundError(f"run {run_id} not found")
        return updated

    def _update_if(
        self, run_id: UUID, values: dict[str, Any], *conditions: Any
    ) -> RunRecord | None:
        """Write ``values`` to the run if it meets ``conditions``, in one statement: the
        run as written, or None (no such run, or it did not meet them)."""
        statement = (
            sa.update(Run)
            .where(Run.id == run_id, *conditions)
            .values(values)
            .returning(*RUN_COLUMNS)
        )
        row = self._connection.execute(statement).first()
        return None if row is None else RunRecord.from_row(row)
