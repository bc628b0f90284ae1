"""Tasks: a run's plan, claimed atomically by workers under leases.

A claimed task's ``attempt`` is its fencing token: a worker that passes it to
``heartbeat``/``complete``/``fail``/``block``/``abandon`` is refused with
``StaleClaimError`` once the task was requeued, abandoned or claimed again, so a slow or
dead worker can never overwrite the work of the one that took over.

A task's life: pending (available at once, at a time, or after a delay) → claimed
(``in_progress`` under a lease) → completed, blocked, or failed: pending again after a
backoff, or blocked once ``max_attempts`` is used; or waiting, held by nobody, for a
person's answer, then pending again (``task_waits``). Each ending writes, in the same
transaction, the task, its attempt's record and a journal event. A claim also rescues
tasks whose lease ran out, so no worker ever has to run a reaper. Cancelling a held task
asks its holder to stop: it learns it from its next heartbeat (``cancel_requested``).

An ending made again after it committed (a retry after a lost reply: the same outcome
under the same attempt, as its attempt record says) returns the task and writes nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, overload
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import schema_of
from agentstore.driver_statements import run_on_driver
from agentstore.errors import InvalidTransitionError, NotFoundError, StaleClaimError
from agentstore.models import Task, TaskAttempt
from agentstore.models.base import utcnow
from agentstore.operations import Repository, reads, writes, writes_in_one_statement
from agentstore.orchestrator.backoff import DEFAULT_BACKOFF
from agentstore.orchestrator.common import insert_events, require_run
from agentstore.orchestrator.task_records import TaskDraft, TaskRecord, check_draft
from agentstore.orchestrator.task_statements import (
    ATTEMPTS,
    ATTEMPTS_EXHAUSTED,
    HELD,
    IS_HELD,
    IS_PENDING,
    LEASE_EXPIRED,
    LEASE_LOST,
    RESCUE_BATCH,
    RESCUE_JOURNAL,
    RUN_NOT_PAUSED,
    TASK_COLUMNS,
    TASKS,
    UNHELD,
    record_attempts,
    statements,
)
from agentstore.orchestrator.task_steps import CLAIMED, CLOSED, RESCUED, Step, steps
from agentstore.statuses import AttemptStatus, TaskStatus
from agentstore.types import UTCDateTime, uuid7
from agentstore.validation import Id

__all__ = ["LEASE_EXPIRED", "Handoff", "TaskDraft", "TaskRecord", "TaskRepository"]

NOW = timedelta(0)
# How a failure is journalled: (event kind, message), by the task's new status.
_FAILED = {
    TaskStatus.PENDING.value: ("task_retry_scheduled", "Attempt failed; task will be retried."),
    TaskStatus.BLOCKED.value: ("task_blocked", "Attempt failed; attempts used up."),
    TaskStatus.ABANDONED.value: ("task_cancelled", "Attempt failed; task was cancelled."),
}


#: How an attempt ended, as its record says: (outcome, summary, blocker signature).
_AttemptEnd = tuple[AttemptStatus, str, str | None]


def _retry_of(ending: dict[str, Any]) -> _AttemptEnd:
    """The attempt record an ending (``_ending``'s parameters) writes."""
    return AttemptStatus(ending["new_status"]), ending["summary"] or "", ending["blocker"]


@dataclass(frozen=True, slots=True)
class Handoff:
    """What ``complete_and_claim`` did: the task it completed (None: the claim on it was
    lost and its result discarded) and the tasks it claimed next."""

    completed: TaskRecord | None
    claimed: builtins.list[TaskRecord]


def _locked_in_id_order(*where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """An UPDATE's condition for the tasks ``where`` picks, locked first in the order of
    their ids, as ``complete_many`` locks a hand (``task_steps``): two statements that
    each lock several of the same rows, in orders of their own, deadlock (PostgreSQL;
    SQLite has one writer)."""
    return Task.id.in_(sa.select(Task.id).where(*where).order_by(Task.id).with_for_update())


class TaskRepository(Repository, aggregate="tasks"):
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

    @reads
    def held_by(self, worker: str, *, run_id: Id | None = None) -> builtins.list[TaskRecord]:
        """The tasks ``worker`` holds now (``in_progress`` under its claim), of one run or
        of any, in plan order: what a worker re-finds when the reply to its claim was lost
        (``StoreUnavailableError``) and the claim may have committed. Worker names must be
        unique for this to be a worker's own. Raises ``ValidationError``."""
        query = sa.select(*TASK_COLUMNS).where(
            IS_HELD, TASKS.c.claimed_by == validation.text(worker, Task.claimed_by)
        )
        if run_id is not None:
            query = query.where(TASKS.c.run_id == validation.identifier(run_id, "run_id"))
        rows = self._connection.execute(query.order_by(TASKS.c.run_id, TASKS.c.position))
        return [TaskRecord.from_row(row) for row in rows]

    @writes
    def replace_pending(self, run_id: Id, drafts: Sequence[TaskDraft]) -> builtins.list[TaskRecord]:
        """Replace the run's plan in one transaction: its pending and waiting tasks and
        the tasks workers hold are abandoned (a holder's later ``complete`` then fails
        with ``StaleClaimError``), and ``drafts`` become pending tasks in the given order.

        Returns the new tasks in plan order. Raises ``NotFoundError`` (no such run) and
        ``ValidationError`` (a bad draft; nothing is changed).
        """
        run_id = validation.identifier(run_id, "run_id")
        rows = [check_draft(draft) for draft in validation.sequence(drafts, "drafts")]
        connection = self._connection
        require_run(connection, run_id, lock=True)  # one replace of a plan at a time
        ending = Task.status.in_([s.value for s in (*UNHELD, *HELD)])
        connection.execute(
            sa.update(Task)
            .where(_locked_in_id_order(Task.run_id == run_id, ending))
            .values(status=TaskStatus.ABANDONED.value, claimed_by=None, lease_expires_at=None)
        )
        if not rows:
            return []
        last = connection.execute(
            sa.select(sa.func.coalesce(sa.func.max(Task.position), -1)).where(Task.run_id == run_id)
        ).scalar_one()
        lease_parameter = self._backend.lease_parameter
        for offset, row in enumerate(rows, start=1):
            row.update(run_id=run_id, status=TaskStatus.PENDING.value, position=last + offset)
            row["delay"] = lease_parameter(row["delay"])
        available_at = sa.func.coalesce(
            sa.bindparam("not_before", type_=UTCDateTime()), self._backend.deadline("delay")
        )
        inserted = connection.execute(
            sa.insert(TASKS)
            .values(available_at=available_at)
            .returning(*TASK_COLUMNS, sort_by_parameter_order=True),
            rows,
        )
        return [TaskRecord.from_row(row) for row in inserted]

    @writes_in_one_statement
    def claim_next(
        self,
        worker: str,
        *,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 1,
    ) -> builtins.list[TaskRecord]:
        """Atomically claim up to ``limit`` available pending tasks for ``worker`` (never
        a task of a paused run, nor one before its ``available_at``): one run's in plan
        order, or (without ``run_id``) any run's by priority, then time available.

        Each claimed task is ``in_progress`` under a lease of ``lease``, its
        ``attempt`` (the fencing token) incremented. Tasks whose lease ran out are
        rescued first (see ``requeue_expired``), so they can be claimed again at once.
        Returns the claimed tasks in claim order, or an empty list. Raises
        ``ValidationError``.
        """
        validation.text(worker, Task.claimed_by)
        validation.duration(lease, "lease")
        validation.positive_int(limit, "limit", maximum=1000)
        run_id = validation.optional_identifier(run_id, "run_id")
        one_statement = steps(self._backend, schema_of(self._connection))
        if one_statement is not None:
            params = self._claim_parameters(worker, run_id, lease, limit)
            return self._claimed(self._step(one_statement.claim(run_id), params), params)
        self._rescue(RESCUE_BATCH)
        # After the rescue: on SQLite "now" is the caller's clock when bound.
        params = self._claim_parameters(worker, run_id, lease, limit)
        found = statements(self._backend)
        claim = found.claim_any_run if run_id is None else found.claim_in_run
        keys, rows = run_on_driver(self._connection, claim, params)
        return self._in_claim_order(TaskRecord.from_driver_rows(keys, rows), run_id)

    @writes_in_one_statement
    def complete_and_claim(
        self,
        task_id: Id,
        summary: str,
        *,
        attempt: int,
        worker: str,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 1,
        result: Any = None,
    ) -> Handoff:
        """A worker's step in steady state, in one transaction: ``complete`` the task it
        holds under ``attempt``, then ``claim_next`` up to ``limit`` tasks. If the claim
        on the finished task was lost (``StaleClaimError``), its completion is skipped
        (``Handoff.completed`` is None: another worker's result stands) and the claim
        still happens. Raises as ``complete`` and ``claim_next`` otherwise."""
        validation.text(summary, Task.implementation_summary)
        validation.positive_int(attempt, "attempt")
        validation.text(worker, Task.claimed_by)
        validation.duration(lease, "lease")
        validation.positive_int(limit, "limit", maximum=1000)
        run_id = validation.optional_identifier(run_id, "run_id")
        one_statement = steps(self._backend, schema_of(self._connection))
        if one_statement is None:
            completed: TaskRecord | None
            try:
                completed = self.complete(task_id, summary, attempt=attempt, result=result)
            except StaleClaimError:  # nothing was written: the fenced UPDATE matched no row
                completed = None
            return Handoff(
                completed, self.claim_next(worker, run_id=run_id, lease=lease, limit=limit)
            )
        step = one_statement.close_and_claim(run_id)
        claim_params = self._claim_parameters(worker, run_id, lease, limit)
        ending = self._ending(task_id, attempt, TaskStatus.COMPLETED, summary, None, result)
        parts = self._step(step, {**claim_params, **ending})
        if parts[CLOSED]:
            return Handoff(parts[CLOSED][0], self._claimed(parts, claim_params))
        try:  # nothing was written: a retry of this completion, or a refusal
            done = self._explain(ending["task_id"], attempt, "complete", _retry_of(ending))
        except StaleClaimError:  # a lost claim: another worker's result stands
            done = None
        return Handoff(done, self.claim_next(worker, run_id=run_id, lease=lease, limit=limit))

    @writes_in_one_statement
    def heartbeat(self, task_id: Id, attempt: int, lease: timedelta) -> TaskRecord:
        """Extend the lease of a task the caller holds under ``attempt``. The answer's
        ``cancel_requested`` tells the holder someone cancelled the task: it should stop
        and ``abandon`` it.

        Raises ``StaleClaimError`` (no longer held under that attempt), ``NotFoundError``,
        ``ValidationError``.
        """
        validation.duration(lease, "lease")
        params = {"lease": self._backend.lease_parameter(lease)}
        statement = statements(self._backend).extend_lease
        return self._finish_held(task_id, attempt, statement, params, "heartbeat")

    @writes_in_one_statement
    def complete(
        self, task_id: Id, summary: str, *, attempt: int, result: Any = None
    ) -> TaskRecord:
        """Mark an ``in_progress`` task completed with its implementation summary, and
        record the attempt (with ``result``, any JSON value) and a ``task_completed``
        event.

        ``attempt`` is the fencing token from the claim. Made again after it committed
        (its reply was lost), the same completion under the same attempt returns the task
        and writes nothing. Raises ``StaleClaimError`` (the claim is no longer current),
        ``InvalidTransitionError`` (the task is not in progress, or ended otherwise),
        ``NotFoundError``, ``ValidationError``.
        """
        validation.text(summary, Task.implementation_summary)
        validation.positive_int(attempt, "attempt")  # the fencing token is required
        return self._end(task_id, attempt, TaskStatus.COMPLETED, summary, None, result, "complete")

    @writes_in_one_statement
    def block(
        self,
        task_id: Id,
        summary: str | None,
        blocker_signature: str | None,
        *,
        attempt: int,
    ) -> TaskRecord:
        """Mark an ``in_progress`` task blocked, recording the attempt and a
        ``task_blocked`` event. A retry returns the task, and raises, as ``complete``."""
        validation.positive_int(attempt, "attempt")  # the fencing token is required
        return self._end(
            task_id, attempt, TaskStatus.BLOCKED, summary, blocker_signature, None, "block"
        )

    @writes
    def fail(
        self, task_id: Id, error: str, *, attempt: int, retry_in: timedelta | None = None
    ) -> TaskRecord:
        """A failed attempt at a task the caller holds: the task is pending again, not
        available before a backoff (``retry_in``, else the task's own ``Backoff``, else
        the store's), or ``blocked`` (``attempts_exhausted``) once it used
        ``max_attempts`` (attempts that asked a person, ``waits``, are not counted), or
        ``abandoned`` if it was cancelled. Records the failed
        attempt (``error`` as its summary) and a journal event. A retry (the same
        ``error`` under the same attempt) returns the task as it is now, and raises, as
        ``complete``.
        """
        task_id = validation.identifier(task_id, "task_id")
        validation.positive_int(attempt, "attempt")
        validation.text(error, TaskAttempt.summary, required=False)
        if retry_in is not None:
            validation.delay(retry_in, "retry_in")
        # Its limits and backoff (never changed after planning), and its waits (changed
        # only by its holder: the caller).
        task = self._get(task_id)
        tries = attempt - task.waits  # the attempts that did not end by asking
        exhausted = task.max_attempts is not None and tries >= task.max_attempts
        if retry_in is None:
            retry_in = (task.backoff or DEFAULT_BACKOFF).delay(tries)
        params = {
            "new_status": (TaskStatus.BLOCKED if exhausted else TaskStatus.PENDING).value,
            "blocker": ATTEMPTS_EXHAUSTED if exhausted else None,
            "retry": self._backend.lease_parameter(NOW if exhausted else retry_in),
        }
        row = self._held_update(task_id, attempt, statements(self._backend).retry, params)
        if row is None:
            return self._explain(task_id, attempt, "fail", (AttemptStatus.FAILED, error, None))
        kind, message = _FAILED[row.status.value]
        payload = {"error": error}
        if row.status is TaskStatus.PENDING:
            payload["retry_at"] = row.available_at.isoformat()
        self._journal_ending(row, AttemptStatus.FAILED, error, None, None, kind, message, payload)
        return row

    @writes
    def abandon(
        self,
        task_id: Id,
        summary: str | None = None,
        blocker_signature: str | None = None,
        *,
        attempt: int,
    ) -> TaskRecord:
        """The holder of the claim ``attempt`` gives the task up: ``abandoned``, its
        attempt recorded, ``task_abandoned`` journalled (a retry returns the task, as
        ``complete``). An operator uses ``force_abandon``. Raises as ``complete``."""
        validation.positive_int(attempt, "attempt")  # the fencing token is required
        return self._end(
            task_id, attempt, TaskStatus.ABANDONED, summary, blocker_signature, None, "abandon"
        )

    @writes
    def force_abandon(self, task_id: Id, reason: str) -> TaskRecord:
        """An operator's override: abandon a pending, waiting or held task at once,
        whoever holds it (its holder's next call gets ``StaleClaimError``), journalling
        ``task_abandoned`` with ``reason``. ``cancel`` is the gentle way: it lets the
        holder stop. Raises ``InvalidTransitionError`` (the task has ended),
        ``NotFoundError``, ``ValidationError``."""
        validation.text(reason, Task.implementation_summary)
        params = self._closing(TaskStatus.ABANDONED, reason, None)
        statement = statements(self._backend).close_unclaimed
        row = self._finish_held(task_id, None, statement, params, "force_abandon")
        self._journal(row, "task_abandoned", "Task abandoned by an operator.", {"reason": reason})
        return row

    @writes
    def release(self, task_id: Id, reason: str, *, attempt: int) -> TaskRecord:
        """Hand a task the caller holds back unfinished (a worker shutting down): pending
        again and available at once, journalled ``task_released`` with ``reason``. The
        attempt still counts toward ``max_attempts``. Raises as ``complete``."""
        validation.text(reason, Task.implementation_summary)
        params = {"now": self._backend.lease_parameter(NOW)}
        statement = statements(self._backend).release
        row = self._finish_held(task_id, attempt, statement, params, "release")
        self._journal(row, "task_released", "Task handed back by its holder.", {"reason": reason})
        return row

    @reads
    def next_due(self, run_id: Id | None = None) -> datetime | None:
        """The earliest time a claim (of the run, or of any run) may find work: when the
        next pending task of a run that is not paused becomes available, or the next held
        task's lease runs out (it is then rescued). None: no task is pending or held. A
        worker sleeps until then when it finds nothing to claim."""
        run_id = validation.optional_identifier(run_id, "run_id")
        pending = sa.select(sa.func.min(TASKS.c.available_at)).where(IS_PENDING, RUN_NOT_PAUSED)
        held = sa.select(sa.func.min(TASKS.c.lease_expires_at)).where(IS_HELD)
        if run_id is not None:
            pending = pending.where(TASKS.c.run_id == run_id)
            held = held.where(TASKS.c.run_id == run_id)
        both = sa.select(pending.scalar_subquery(), held.scalar_subquery())  # one round trip
        known = [moment for moment in self._connection.execute(both).one() if moment is not None]
        return min(known) if known else None

    @writes
    def cancel(self, task_id: Id, reason: str) -> TaskRecord:
        """Cancel a task: a pending or waiting one is ``abandoned`` at once
        (``task_cancelled``); a held one is marked ``cancel_requested``
        (``task_cancel_requested``) and its holder learns it from its next heartbeat.
        Cancelling again with the same ``reason`` returns the task and writes nothing.
        Raises ``InvalidTransitionError`` (the task has ended, or was cancelled for
        another reason), ``NotFoundError``, ``ValidationError``."""
        task_id = validation.identifier(task_id, "task_id")
        params = {
            "reason": validation.text(reason, Task.cancel_reason),
            "task_id": task_id,
            "held_attempt": None,
        }
        found = statements(self._backend)
        for statement, kind, message in (
            (found.cancel_pending, "task_cancelled", "Task cancelled."),
            (found.request_cancel, "task_cancel_requested", "Holder asked to stop."),
        ):
            row = self._connection.execute(statement, params).first()
            if row is not None:
                task = TaskRecord.from_row(row)
                self._journal(task, kind, message, {"reason": reason})
                return task
        current = self._get(task_id)
        if current.cancel_reason == reason:  # a retry: already cancelled for this reason
            return current
        if current.cancel_reason is not None:
            raise InvalidTransitionError(
                f"cannot cancel task {task_id}: already cancelled ({current.cancel_reason!r})",
                status=current.status.value,
                attempt=current.attempt,
            )
        raise InvalidTransitionError(
            f"cannot cancel task {task_id}: it has ended ({current.status.value})",
            status=current.status.value,
            attempt=current.attempt,
        )

    @writes
    def requeue_in_progress(self, run_id: Id) -> int:
        """Put every in-progress task of the run back to pending (a run resuming after a
        stop), journalling a ``requeue_in_progress`` event. Returns how many moved.
        Raises ``NotFoundError``."""
        run_id = validation.identifier(run_id, "run_id")
        connection = self._connection
        require_run(connection, run_id)
        held = Task.status == TaskStatus.IN_PROGRESS.value
        moved = connection.execute(
            sa.update(Task)
            .where(_locked_in_id_order(Task.run_id == run_id, held))
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
        """Rescue every task whose lease ran out (its worker died or stalled): pending
        again, or ``blocked`` with blocker signature ``lease_expired`` once the task has
        used ``max_attempts``, or ``abandoned`` if it was cancelled. Each rescue records
        the lost attempt and a journal event. Claims do this on their own; this is for
        operators. Returns how many moved."""
        rescued = 0
        while moved := self._rescue(1000):
            rescued += moved
        return rescued

    # -- inside ------------------------------------------------------------------------

    def _get(self, task_id: UUID) -> TaskRecord:
        query = sa.select(*TASK_COLUMNS).where(Task.id == task_id)
        row = self._connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"task {task_id} not found")
        return TaskRecord.from_row(row)

    def _rescue(self, limit: int) -> int:
        """Rescue up to ``limit`` expired leases, recording each lost attempt and
        journalling it. Returns how many."""
        params = {"now": self._backend.lease_parameter(NOW), "rescue_limit": limit}
        keys, found = run_on_driver(self._connection, statements(self._backend).rescue, params)
        if not found:
            return 0
        rows = [dict(zip(keys, row, strict=True)) for row in found]
        record_attempts(self._backend).execute(
            self._connection,
            [
                {
                    "id": uuid7(),
                    "run_id": row["run_id"],
                    "task_id": row["id"],
                    "attempt": row["attempt"],
                    "status": AttemptStatus.FAILED.value,
                    "summary": LEASE_LOST,
                    "blocker_signature": LEASE_EXPIRED,
                    "result": {},
                }
                for row in rows
            ],
            {"created_at": utcnow()},
        )
        insert_events(
            self._connection,
            self._backend,
            [
                {
                    "run_id": row["run_id"],
                    "source": "system",
                    "kind": RESCUE_JOURNAL[row["status"]][0],
                    "message": RESCUE_JOURNAL[row["status"]][1],
                    "payload": {"task_id": str(row["id"]), "attempt": row["attempt"]},
                }
                for row in rows
            ],
        )
        return len(rows)

    @staticmethod
    def _closing(status: TaskStatus, summary: str | None, blocker: str | None) -> dict[str, Any]:
        return {
            "new_status": status.value,
            "summary": validation.optional_text(summary, Task.implementation_summary),
            "blocker": validation.optional_text(blocker, Task.blocker_signature),
        }

    def _end(
        self,
        task_id: Id,
        attempt: int | None,
        status: TaskStatus,
        summary: str | None,
        blocker: str | None,
        result: Any,
        action: str,
    ) -> TaskRecord:
        """End the claim on the task with ``status``; record the attempt and journal."""
        params = self._ending(task_id, attempt, status, summary, blocker, result)
        checked: UUID = params["task_id"]
        one_statement = steps(self._backend, schema_of(self._connection))
        if one_statement is not None:
            closed = self._step(one_statement.close, params)[CLOSED]
            if not closed:
                return self._explain(checked, attempt, action, _retry_of(params))
            return closed[0]
        row = self._held_update(checked, attempt, statements(self._backend).close, params)
        if row is None:
            return self._explain(checked, attempt, action, _retry_of(params))
        self._journal_ending(
            row,
            AttemptStatus(status.value),
            summary or "",
            blocker,
            params["result"],
            params["kind"],
            params["message"],
            {},
        )
        return row

    def _ending(
        self,
        task_id: Id,
        attempt: int | None,
        status: TaskStatus,
        summary: str | None,
        blocker: str | None,
        result: Any,
    ) -> dict[str, Any]:
        """The parameters of ending a claim with ``status``, checked."""
        return {
            **self._closing(status, summary, blocker),
            "task_id": validation.identifier(task_id, "task_id"),
            "held_attempt": None
            if attempt is None
            else validation.positive_int(attempt, "attempt"),
            "result": validation.json_value({} if result is None else result, "result"),
            "kind": f"task_{status.value}",
            "message": f"Task {status.value}.",
        }

    def _claim_parameters(
        self, worker: str, run_id: UUID | None, lease: timedelta, limit: int
    ) -> dict[str, Any]:
        return {
            "worker": worker,
            "lease": self._backend.lease_parameter(lease),
            "now": self._backend.lease_parameter(NOW),
            "limit": limit,
            "in_run": run_id,
            "rescue_limit": RESCUE_BATCH,
        }

    def _step(self, step: Step, params: dict[str, Any]) -> dict[str, builtins.list[TaskRecord]]:
        """Run a one-statement step (``task_steps``): its tasks, by part."""
        keys, rows = run_on_driver(self._connection, step, params)
        part = keys.index("part")
        by_part: dict[str, builtins.list[tuple[Any, ...]]] = {CLOSED: [], RESCUED: [], CLAIMED: []}
        for row in rows:
            by_part[row[part]].append(row)
        return {name: TaskRecord.from_driver_rows(keys, rows) for name, rows in by_part.items()}

    def _claimed(
        self, parts: dict[str, builtins.list[TaskRecord]], params: dict[str, Any]
    ) -> builtins.list[TaskRecord]:
        """The tasks a step claimed; when its rescue freed tasks and it claimed fewer
        than asked, one more claim (a statement sees the tables as they were when it
        began, so it could not take the tasks it freed)."""
        claimed = parts[CLAIMED]
        run_id = params["in_run"]
        if parts[RESCUED] and len(claimed) < params["limit"]:
            found = steps(self._backend, schema_of(self._connection))
            assert found is not None
            more = {**params, "limit": params["limit"] - len(claimed)}
            claimed = claimed + self._step(found.claim(run_id), more)[CLAIMED]
        return self._in_claim_order(claimed, run_id)

    @staticmethod
    def _in_claim_order(
        claimed: builtins.list[TaskRecord], run_id: UUID | None
    ) -> builtins.list[TaskRecord]:
        # RETURNING gives no order; hand tasks back in the order they were chosen.
        if run_id is not None:
            return sorted(claimed, key=lambda t: (t.position, t.id))
        return sorted(claimed, key=lambda t: (-t.priority, t.available_at, t.position, t.id))

    def _journal_ending(
        self,
        task: TaskRecord,
        outcome: AttemptStatus,
        summary: str,
        blocker: str | None,
        result: Any,
        kind: str,
        message: str,
        payload: dict[str, Any],
    ) -> None:
        """Record the attempt that just ended (unless the caller already did) and
        journal the task's new state."""
        run_on_driver(
            self._connection,
            statements(self._backend).record_attempt,
            {
                "run_id": task.run_id,
                "task_id": task.id,
                "attempt": task.attempt,
                "status": outcome.value,
                "summary": summary,
                "blocker_signature": blocker,
                "result": {} if result is None else result,
            },
        )
        self._journal(task, kind, message, payload)

    def _journal(self, task: TaskRecord, kind: str, message: str, payload: dict[str, Any]) -> None:
        insert_events(
            self._connection,
            self._backend,
            [
                {
                    "run_id": task.run_id,
                    "source": "system",
                    "kind": kind,
                    "message": message,
                    "payload": {"task_id": str(task.id), "attempt": task.attempt, **payload},
                }
            ],
        )

    def _finish_held(
        self,
        task_id: Id,
        attempt: int | None,
        statement: sa.Update,
        params: dict[str, Any],
        action: str,
    ) -> TaskRecord:
        """Run ``statement`` (a held-task UPDATE, see ``_held_update``); if it matched no
        row, explain why with the right error."""
        row = self._held_update(task_id, attempt, statement, params)
        if row is None:
            self._explain(validation.identifier(task_id, "task_id"), attempt, action)
        return row

    def _held_update(
        self, task_id: Id, attempt: int | None, statement: sa.Update, params: dict[str, Any]
    ) -> TaskRecord | None:
        """Run ``statement`` on the task if it is in one of the statement's statuses
        (and, with ``attempt``, still held under it), in one conditional UPDATE: the task
        as updated, or None."""
        task_id = validation.identifier(task_id, "task_id")
        if attempt is not None:
            validation.positive_int(attempt, "attempt")
        params = {**params, "task_id": task_id, "held_attempt": attempt}
        keys, rows = run_on_driver(self._connection, statement, params)
        return TaskRecord.from_driver_rows(keys, rows[:1])[0] if rows else None

    @overload
    def _explain(self, task_id: UUID, attempt: int | None, action: str) -> NoReturn: ...
    @overload
    def _explain(
        self, task_id: UUID, attempt: int | None, action: str, retry_of: _AttemptEnd
    ) -> TaskRecord: ...
    def _explain(
        self,
        task_id: UUID,
        attempt: int | None,
        action: str,
        retry_of: _AttemptEnd | None = None,
    ) -> TaskRecord:
        """A fenced UPDATE matched no row. When the caller's attempt already ended as
        ``retry_of`` says (the same call committed, and its reply was lost), the task as
        it is now; otherwise raise the right error."""
        current = self._get(task_id)
        if retry_of is not None and attempt is not None:
            ended = self._connection.execute(
                sa.select(
                    ATTEMPTS.c.status, ATTEMPTS.c.summary, ATTEMPTS.c.blocker_signature
                ).where(ATTEMPTS.c.task_id == task_id, ATTEMPTS.c.attempt == attempt)
            ).first()
            status, summary, blocker = retry_of
            if ended is not None and tuple(ended) == (status.value, summary, blocker):
                return current
        if attempt is not None and (
            current.attempt != attempt
            or current.status in (TaskStatus.PENDING, TaskStatus.ABANDONED)
        ):
            raise StaleClaimError(
                f"cannot {action} task {task_id}: attempt {attempt} is no longer its claim "
                f"(now {current.status.value}, attempt {current.attempt})",
                status=current.status.value,
                attempt=current.attempt,
            )
        raise InvalidTransitionError(
            f"cannot {action} task {task_id}: it is {current.status.value}",
            status=current.status.value,
            attempt=current.attempt,
        )
