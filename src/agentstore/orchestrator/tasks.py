"""Tasks: a run's plan, claimed atomically by workers under leases.

The attempt number a claim returns is a fencing token: a worker that passes it to
``heartbeat``/``complete``/``block``/``abandon`` is refused with ``StaleClaimError`` once
the task was requeued, abandoned or claimed again, so a slow or dead worker can never
overwrite the work of the one that took over.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import Backend
from agentstore.errors import (
    InvalidTransitionError,
    NotFoundError,
    StaleClaimError,
    ValidationError,
)
from agentstore.models import Task, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.common import insert_events, require_run
from agentstore.records import from_row
from agentstore.statuses import TaskStatus
from agentstore.validation import Id

LEASE_EXPIRED = "lease_expired"
HELD = (TaskStatus.IN_PROGRESS,)  # the status of a task a worker holds
TASKS = core_table(Task)
TASK_COLUMNS = tuple(TASKS.c)
# The literal (not a bound parameter) lets PostgreSQL match the partial indexes
# ``ix_tasks_pending_*`` even in a generic prepared plan.
IS_PENDING = sa.literal_column("status") == sa.literal_column("'pending'")


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """One step of a plan, as the planner writes it."""

    title: str
    objective: str
    acceptance_criteria: Sequence[str] = ()
    verification_steps: Sequence[str] = ()
    allowed_paths: Sequence[str] = ()
    priority: int = 0
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: UUID
    run_id: UUID
    title: str
    objective: str
    acceptance_criteria: tuple[str, ...]
    verification_steps: tuple[str, ...]
    allowed_paths: tuple[str, ...]
    status: TaskStatus
    position: int
    priority: int
    attempt_count: int
    max_attempts: int | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    implementation_summary: str | None
    blocker_signature: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        mapping = row._mapping
        return from_row(
            cls,
            mapping,
            status=TaskStatus(mapping["status"]),
            acceptance_criteria=tuple(mapping["acceptance_criteria"]),
            verification_steps=tuple(mapping["verification_steps"]),
            allowed_paths=tuple(mapping["allowed_paths"]),
        )


def _check_draft(draft: TaskDraft) -> dict[str, Any]:
    if not isinstance(draft, TaskDraft):
        raise ValidationError(f"expected a TaskDraft, got {type(draft).__name__}")

    def strings(values: Sequence[str], name: str) -> list[str]:
        checked = validation.sequence(values, name)
        if not all(isinstance(v, str) for v in checked):
            raise ValidationError(f"{name} must be a list of strings")
        return checked

    return {
        "title": validation.text(draft.title, Task.title),
        "objective": validation.text(draft.objective, Task.objective),
        "acceptance_criteria": strings(draft.acceptance_criteria, "acceptance_criteria"),
        "verification_steps": strings(draft.verification_steps, "verification_steps"),
        "allowed_paths": strings(draft.allowed_paths, "allowed_paths"),
        "priority": validation.positive_int(draft.priority, "priority", minimum=-(2**31)),
        "max_attempts": None
        if draft.max_attempts is None
        else validation.positive_int(draft.max_attempts, "max_attempts"),
    }


def _closing(status: TaskStatus, summary: str | None, blocker: str | None) -> dict[str, Any]:
    """The parameters of ``TaskRepository._close`` that end a claim with ``status``."""
    return {
        "new_status": status.value,
        "summary": validation.optional_text(summary, Task.implementation_summary),
        "blocker": validation.optional_text(blocker, Task.blocker_signature),
    }


def _claim_statement(backend: Backend, *, in_run: bool) -> sa.Update:
    """The atomic claim of up to ``:limit`` pending tasks for ``:worker`` under a lease
    (``:lease``): of the run ``:in_run`` in plan order, or of any run by priority, then age."""
    candidates = sa.select(TASKS.c.id).where(IS_PENDING).limit(sa.bindparam("limit"))
    if in_run:
        candidates = candidates.where(TASKS.c.run_id == sa.bindparam("in_run")).order_by(
            TASKS.c.position, TASKS.c.id
        )
    else:
        candidates = candidates.order_by(
            TASKS.c.priority.desc(), TASKS.c.created_at, TASKS.c.position, TASKS.c.id
        )
    return (
        sa.update(TASKS)
        .where(backend.claimable(candidates, TASKS.c.id))
        .values(
            status=TaskStatus.IN_PROGRESS.value,
            attempt_count=TASKS.c.attempt_count + 1,
            claimed_by=sa.bindparam("worker"),
            lease_expires_at=backend.deadline(),
        )
        .returning(*TASK_COLUMNS)
    )


def _held_update(values: dict[str, Any], from_statuses: tuple[TaskStatus, ...]) -> sa.Update:
    """An UPDATE of the task ``:task_id`` that applies only while its status is among
    ``from_statuses`` and, unless ``:attempt`` is NULL, its claim is that attempt."""
    attempt = sa.bindparam("attempt", type_=sa.Integer)
    return (
        sa.update(TASKS)
        .where(
            TASKS.c.id == sa.bindparam("task_id"),
            # Separate parameters, not one "expanding" list, which SQLAlchemy would
            # re-render into the SQL string on every execution.
            TASKS.c.status.in_([sa.literal(s.value) for s in from_statuses]),
            sa.or_(attempt.is_(None), TASKS.c.attempt_count == attempt),
        )
        .values(values)
        .returning(*TASK_COLUMNS)
    )


@dataclass(frozen=True)
class _Statements:
    """The hot paths' statements, built once per database with bound parameters:
    SQLAlchemy then skips building each statement and its cache key on every call."""

    claim_in_run: sa.Update
    claim_any_run: sa.Update
    close: sa.Update
    close_unclaimed: sa.Update
    extend_lease: sa.Update


@functools.cache
def _statements(backend: Backend) -> _Statements:
    closing: dict[str, Any] = {
        "status": sa.bindparam("new_status"),
        "implementation_summary": sa.bindparam("summary"),
        "blocker_signature": sa.bindparam("blocker"),
        "claimed_by": None,
        "lease_expires_at": None,
    }
    return _Statements(
        claim_in_run=_claim_statement(backend, in_run=True),
        claim_any_run=_claim_statement(backend, in_run=False),
        close=_held_update(closing, HELD),
        close_unclaimed=_held_update(closing, (TaskStatus.PENDING, *HELD)),
        extend_lease=_held_update({"lease_expires_at": backend.deadline()}, HELD),
    )


class TaskRepository(Repository):
    """``store.tasks``: the plan of each run and the claims workers hold on it."""

    __slots__ = ()

    @reads
    def get(self, task_id: Id) -> TaskRecord:
        """The task. Raises ``NotFoundError``."""
        return self._get(validation.identifier(task_id, "task_id"))

    @reads
    def list(
        self,
        run_id: Id,
        statuses: Iterable[str] | None = None,
        *,
        limit: int | None = None,
    ) -> builtins.list[TaskRecord]:
        """The run's tasks in plan order, optionally only those in ``statuses``, at most
        ``limit``. Raises ``ValidationError`` for an unknown status."""
        query = sa.select(*TASK_COLUMNS).where(
            Task.run_id == validation.identifier(run_id, "run_id")
        )
        if limit is not None:
            query = query.limit(validation.positive_int(limit, "limit"))
        if statuses is not None:
            wanted = validation.statuses(statuses, TaskStatus)
            query = query.where(Task.status.in_([s.value for s in wanted]))
        rows = self._connection.execute(query.order_by(Task.position, Task.id))
        return [TaskRecord.from_row(row) for row in rows]

    @writes
    def replace_pending(self, run_id: Id, drafts: Sequence[TaskDraft]) -> builtins.list[TaskRecord]:
        """Replace the run's plan in one transaction: its pending tasks and the tasks
        workers hold are abandoned (a holder's later ``complete`` then fails with
        ``StaleClaimError``), and ``drafts`` become pending tasks in the given order.

        Returns the new tasks in plan order. Raises ``NotFoundError`` (no such run) and
        ``ValidationError`` (a bad draft; nothing is changed).
        """
        run_id = validation.identifier(run_id, "run_id")
        rows = [_check_draft(draft) for draft in validation.sequence(drafts, "drafts")]
        connection = self._connection
        require_run(connection, run_id, lock=True)  # one replace of a plan at a time
        connection.execute(
            sa.update(Task)
            .where(
                Task.run_id == run_id,
                Task.status.in_([TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value]),
            )
            .values(status=TaskStatus.ABANDONED.value, claimed_by=None, lease_expires_at=None)
        )
        if not rows:
            return []
        last = connection.execute(
            sa.select(sa.func.coalesce(sa.func.max(Task.position), -1)).where(Task.run_id == run_id)
        ).scalar_one()
        for offset, row in enumerate(rows, start=1):
            row.update(run_id=run_id, status=TaskStatus.PENDING.value, position=last + offset)
        inserted = connection.execute(
            sa.insert(Task).returning(*TASK_COLUMNS, sort_by_parameter_order=True), rows
        )
        return [TaskRecord.from_row(row) for row in inserted]

    @writes
    def claim_next(
        self,
        worker: str,
        *,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 1,
    ) -> builtins.list[TaskRecord]:
        """Atomically claim up to ``limit`` pending tasks for ``worker``: one run's in plan
        order, or (without ``run_id``) any run's by priority, then age.

        Each claimed task is ``in_progress`` under a lease of ``lease``, its
        ``attempt_count`` (the fencing token) incremented. Returns the claimed tasks in
        claim order, or an empty list. Raises ``ValidationError``.
        """
        validation.text(worker, Task.claimed_by)
        validation.duration(lease, "lease")
        validation.positive_int(limit, "limit", maximum=1000)
        run_id = validation.optional_identifier(run_id, "run_id")
        statements = _statements(self._backend)
        claim = statements.claim_any_run if run_id is None else statements.claim_in_run
        params = {
            "worker": worker,
            "lease": self._backend.lease_parameter(lease),
            "limit": limit,
            "in_run": run_id,
        }
        claimed = [TaskRecord.from_row(row) for row in self._connection.execute(claim, params)]
        # RETURNING gives no order; hand tasks back in the order they were chosen.
        if run_id is not None:
            return sorted(claimed, key=lambda t: (t.position, t.id))
        return sorted(claimed, key=lambda t: (-t.priority, t.created_at, t.position, t.id))

    @writes
    def heartbeat(self, task_id: Id, attempt: int, lease: timedelta) -> TaskRecord:
        """Extend the lease of a task the caller holds under ``attempt``.

        Raises ``StaleClaimError`` (no longer held under that attempt), ``NotFoundError``,
        ``ValidationError``.
        """
        validation.duration(lease, "lease")
        params = {"lease": self._backend.lease_parameter(lease)}
        statement = _statements(self._backend).extend_lease
        return self._finish_held(task_id, attempt, statement, params, "heartbeat")

    @writes
    def complete(self, task_id: Id, summary: str, *, attempt: int | None = None) -> TaskRecord:
        """Mark an ``in_progress`` task completed with its implementation summary.

        ``attempt`` is the fencing token from the claim. Raises ``StaleClaimError`` (the
        claim is no longer current), ``InvalidTransitionError`` (the task is not in
        progress), ``NotFoundError``, ``ValidationError``.
        """
        validation.text(summary, Task.implementation_summary)
        params = _closing(TaskStatus.COMPLETED, summary, None)
        return self._finish_held(
            task_id, attempt, _statements(self._backend).close, params, "complete"
        )

    @writes
    def block(
        self,
        task_id: Id,
        summary: str | None,
        blocker_signature: str | None,
        *,
        attempt: int | None = None,
    ) -> TaskRecord:
        """Mark an ``in_progress`` task blocked. Raises as ``complete``."""
        params = _closing(TaskStatus.BLOCKED, summary, blocker_signature)
        return self._finish_held(
            task_id, attempt, _statements(self._backend).close, params, "block"
        )

    @writes
    def abandon(
        self,
        task_id: Id,
        summary: str | None = None,
        blocker_signature: str | None = None,
        *,
        attempt: int | None = None,
    ) -> TaskRecord:
        """Abandon a pending or in-progress task. With ``attempt``, only the holder of
        that claim may. Raises as ``complete``."""
        params = _closing(TaskStatus.ABANDONED, summary, blocker_signature)
        # Without a fencing token a pending task may be abandoned too.
        statements = _statements(self._backend)
        statement = statements.close if attempt is not None else statements.close_unclaimed
        return self._finish_held(task_id, attempt, statement, params, "abandon")

    @writes
    def requeue_in_progress(self, run_id: Id) -> int:
        """Put every in-progress task of the run back to pending (a run resuming after a
        stop), journalling a ``requeue_in_progress`` event. Returns how many moved.
        Raises ``NotFoundError``."""
        run_id = validation.identifier(run_id, "run_id")
        connection = self._connection
        require_run(connection, run_id)
        moved = connection.execute(
            sa.update(Task)
            .where(Task.run_id == run_id, Task.status == TaskStatus.IN_PROGRESS.value)
            .values(status=TaskStatus.PENDING.value, claimed_by=None, lease_expires_at=None)
        ).rowcount
        if moved:
            insert_events(
                connection,
                self._backend,
                [
                    {
                        "run_id": run_id,
                        "source": "system",
                        "kind": "requeue_in_progress",
                        "message": "Requeued in-progress tasks on resume.",
                        "payload": {"changes": moved},
                    }
                ],
            )
        return int(moved)

    @writes
    def requeue_expired(self) -> int:
        """Rescue tasks whose lease ran out (their worker died or stalled): back to
        pending, or ``blocked`` with blocker signature ``lease_expired`` once the task has
        used ``max_attempts``. Each rescue is journalled. Returns how many moved."""
        expired = sa.and_(
            Task.status == TaskStatus.IN_PROGRESS.value,
            Task.lease_expires_at < self._backend.clock(),
        )
        exhausted = sa.and_(Task.max_attempts.is_not(None), Task.attempt_count >= Task.max_attempts)
        released = {"claimed_by": None, "lease_expires_at": None}
        connection = self._connection
        blocked = connection.execute(
            sa.update(Task)
            .where(expired, exhausted)
            .values(status=TaskStatus.BLOCKED.value, blocker_signature=LEASE_EXPIRED, **released)
            .returning(Task.id, Task.run_id, Task.attempt_count)
        ).all()
        requeued = connection.execute(
            sa.update(Task)
            .where(expired)
            .values(status=TaskStatus.PENDING.value, **released)
            .returning(Task.id, Task.run_id, Task.attempt_count)
        ).all()
        insert_events(
            connection,
            self._backend,
            [
                {
                    "run_id": row.run_id,
                    "source": "system",
                    "kind": kind,
                    "message": message,
                    "payload": {"task_id": str(row.id), "attempt": row.attempt_count},
                }
                for rows, kind, message in (
                    (blocked, "lease_expired_blocked", "Lease expired; attempts used up."),
                    (requeued, "lease_expired_requeued", "Lease expired; task requeued."),
                )
                for row in rows
            ],
        )
        return len(blocked) + len(requeued)

    def _get(self, task_id: UUID) -> TaskRecord:
        query = sa.select(*TASK_COLUMNS).where(Task.id == task_id)
        row = self._connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"task {task_id} not found")
        return TaskRecord.from_row(row)

    def _finish_held(
        self,
        task_id: Id,
        attempt: int | None,
        statement: sa.Update,
        params: dict[str, Any],
        action: str,
    ) -> TaskRecord:
        """Run ``statement`` (a ``_held_update``) on the task if it is in one of the
        statement's statuses (and, with ``attempt``, still held under it), in one
        conditional UPDATE; otherwise explain why not with the right error."""
        task_id = validation.identifier(task_id, "task_id")
        if attempt is not None:
            validation.positive_int(attempt, "attempt")
        params = {**params, "task_id": task_id, "attempt": attempt}
        row = self._connection.execute(statement, params).first()
        if row is not None:
            return TaskRecord.from_row(row)
        current = self._get(task_id)
        if attempt is not None and (
            current.attempt_count != attempt
            or current.status in (TaskStatus.PENDING, TaskStatus.ABANDONED)
        ):
            raise StaleClaimError(
                f"cannot {action} task {task_id}: attempt {attempt} is no longer its claim "
                f"(now {current.status.value}, attempt {current.attempt_count})"
            )
        raise InvalidTransitionError(
            f"cannot {action} task {task_id}: it is {current.status.value}"
        )
