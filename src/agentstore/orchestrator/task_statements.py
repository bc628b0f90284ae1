"""The statements of a task's life, built once per database with bound parameters
(SQLAlchemy then skips building each statement and its cache key on every call).

Every time a statement compares with "now" or sets a time, it goes through the
backend's ``deadline(name)``: the server's clock on PostgreSQL (shared by every worker
machine), a bound local time on SQLite. A lease's end goes through ``expiry``: the clock
at the moment the row is written, so that no claim hands out a lease already spent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from agentstore.backends import Backend
from agentstore.bulk_insert import BulkInsert
from agentstore.models import Run, Task, TaskAttempt, core_table
from agentstore.statuses import RunStatus, TaskStatus

TASKS = core_table(Task)
RUNS = core_table(Run)
ATTEMPTS = core_table(TaskAttempt)
TASK_COLUMNS = tuple(TASKS.c)
HELD = (TaskStatus.IN_PROGRESS,)  # the status of a task a worker holds
UNHELD = (TaskStatus.PENDING, TaskStatus.WAITING)  # a live task nobody holds
LEASE_EXPIRED = "lease_expired"
#: A rescue's record of the attempt it ends, and its journal entry (event kind,
#: message) by the task's new status.
LEASE_LOST = "The lease expired before the holder finished."
RESCUE_JOURNAL = {
    TaskStatus.PENDING.value: ("lease_expired_requeued", "Lease expired; task requeued."),
    TaskStatus.BLOCKED.value: ("lease_expired_blocked", "Lease expired; attempts used up."),
    TaskStatus.ABANDONED.value: ("lease_expired_abandoned", "Lease expired; task cancelled."),
}
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
#: How many expired leases one claim rescues at most (the next claims take the rest).
RESCUE_BATCH = 100


def status_is(status: TaskStatus) -> sa.ColumnElement[bool]:
    # A literal (not a bound parameter) lets PostgreSQL match the partial indexes
    # (``… WHERE status = 'pending'``) even in a generic prepared plan.
    return sa.literal_column("status") == sa.literal_column(f"'{status.value}'")


IS_PENDING = status_is(TaskStatus.PENDING)
IS_HELD = status_is(TaskStatus.IN_PROGRESS)
RUN_NOT_PAUSED = ~sa.exists().where(
    RUNS.c.id == TASKS.c.run_id, RUNS.c.status == sa.literal(RunStatus.PAUSED.value)
)
# Attempts that ended by asking a person do not use up ``max_attempts``.
EXHAUSTED = sa.and_(
    TASKS.c.max_attempts.is_not(None),
    TASKS.c.attempt - TASKS.c.waits >= TASKS.c.max_attempts,
)
CANCELLED = TASKS.c.cancel_reason.is_not(None)
RELEASED = {"claimed_by": None, "lease_expires_at": None}


def _claim(backend: Backend, *, in_run: bool) -> sa.Update:
    """The atomic claim of up to ``:limit`` available pending tasks of runs that are not
    paused, for ``:worker`` under a lease (``:lease``): of the run ``:in_run`` in plan
    order, or of any run by priority, then time available, then plan order."""
    candidates = (
        sa.select(TASKS.c.id)
        .where(
            IS_PENDING,
            TASKS.c.available_at <= backend.deadline("now"),
            RUN_NOT_PAUSED,
        )
        .limit(sa.bindparam("limit"))
    )
    if in_run:
        # Positions are unique within a run (a plan is written under the run's lock),
        # so the position alone is the order: with a tie-break the databases sort.
        candidates = candidates.where(TASKS.c.run_id == sa.bindparam("in_run")).order_by(
            TASKS.c.position
        )
    else:
        candidates = candidates.order_by(
            TASKS.c.priority.desc(), TASKS.c.available_at, TASKS.c.position, TASKS.c.id
        )
    return (
        sa.update(TASKS)
        .where(backend.claimable(candidates, TASKS.c.id))
        .values(
            status=TaskStatus.IN_PROGRESS.value,
            attempt=TASKS.c.attempt + 1,
            claimed_by=sa.bindparam("worker"),
            lease_expires_at=backend.expiry("lease"),
        )
        .returning(*TASK_COLUMNS)
    )


def _rescue(backend: Backend) -> sa.Update:
    """Up to ``:rescue_limit`` tasks whose lease ran out (their worker died or stalled):
    pending again at once, or ``blocked`` (``lease_expired``) once they used
    ``max_attempts``, or ``abandoned`` if someone cancelled them meanwhile."""
    now = backend.deadline("now")
    candidates = (
        sa.select(TASKS.c.id)
        .where(IS_HELD, TASKS.c.lease_expires_at < now)
        .limit(sa.bindparam("rescue_limit"))
    )
    return (
        sa.update(TASKS)
        .where(backend.claimable(candidates, TASKS.c.id))
        .values(
            status=sa.case(
                (CANCELLED, TaskStatus.ABANDONED.value),
                (EXHAUSTED, TaskStatus.BLOCKED.value),
                else_=TaskStatus.PENDING.value,
            ),
            blocker_signature=sa.case(
                (sa.and_(~CANCELLED, EXHAUSTED), LEASE_EXPIRED), else_=TASKS.c.blocker_signature
            ),
            available_at=now,
            **RELEASED,
        )
        .returning(TASKS.c.id, TASKS.c.run_id, TASKS.c.attempt, TASKS.c.status)
    )


def _held(values: dict[str, Any], from_statuses: tuple[TaskStatus, ...]) -> sa.Update:
    """An UPDATE of the task ``:task_id`` that applies only while its status is among
    ``from_statuses`` and, unless ``:held_attempt`` is NULL, its claim is that attempt."""
    attempt = sa.bindparam("held_attempt", type_=sa.Integer)
    return (
        sa.update(TASKS)
        .where(
            TASKS.c.id == sa.bindparam("task_id"),
            # Separate parameters, not one "expanding" list, which SQLAlchemy would
            # re-render into the SQL string on every execution.
            TASKS.c.status.in_([sa.literal(s.value) for s in from_statuses]),
            sa.or_(attempt.is_(None), TASKS.c.attempt == attempt),
        )
        .values(values)
        .returning(*TASK_COLUMNS)
    )


@dataclass(frozen=True)
class Statements:
    claim_in_run: sa.Update
    claim_any_run: sa.Update
    rescue: sa.Update
    #: End a claim (complete, block, abandon): ``:new_status``, ``:summary``, ``:blocker``.
    close: sa.Update
    close_unclaimed: sa.Update
    #: A failed attempt: ``:new_status`` (pending or blocked), ``:blocker``, available
    #: again after ``:retry``; a task cancelled meanwhile is abandoned instead.
    retry: sa.Update
    extend_lease: sa.Update
    #: Hand a held task back: pending and available at once (abandoned if cancelled).
    release: sa.Update
    #: Cancel a task nobody holds (pending or waiting): abandoned at once.
    cancel_pending: sa.Update
    request_cancel: sa.Update
    #: The holder asks a person ``:question``: waiting, held by nobody (abandoned
    #: instead if it was cancelled meanwhile).
    wait: sa.Update
    #: A person's ``:answer`` to a waiting task: pending and available at once.
    answer: sa.Update
    #: An attempt's record, unless the caller already recorded that attempt.
    record_attempt: sa.Insert


@functools.cache
def statements(backend: Backend) -> Statements:
    new_status: sa.BindParameter[str] = sa.bindparam("new_status")
    closing: dict[str, Any] = {
        "status": new_status,
        "implementation_summary": sa.bindparam("summary"),
        "blocker_signature": sa.bindparam("blocker"),
        **RELEASED,
    }
    retrying: dict[str, Any] = {
        "status": sa.case((CANCELLED, TaskStatus.ABANDONED.value), else_=new_status),
        "blocker_signature": sa.bindparam("blocker"),
        "available_at": backend.deadline("retry"),
        **RELEASED,
    }
    cancelling: dict[str, Any] = {"cancel_reason": sa.bindparam("reason")}
    return Statements(
        claim_in_run=_claim(backend, in_run=True),
        claim_any_run=_claim(backend, in_run=False),
        rescue=_rescue(backend),
        close=_held(closing, HELD),
        close_unclaimed=_held(closing, (*UNHELD, *HELD)),
        retry=_held(retrying, HELD),
        extend_lease=_held({"lease_expires_at": backend.expiry("lease")}, HELD),
        release=_held(
            {
                "status": sa.case(
                    (CANCELLED, TaskStatus.ABANDONED.value), else_=TaskStatus.PENDING.value
                ),
                "available_at": backend.deadline("now"),
                **RELEASED,
            },
            HELD,
        ),
        cancel_pending=_held({**cancelling, "status": TaskStatus.ABANDONED.value}, UNHELD),
        request_cancel=_held(cancelling, HELD).where(~CANCELLED),  # asked once
        wait=_held(
            {
                "status": sa.case(
                    (CANCELLED, TaskStatus.ABANDONED.value), else_=TaskStatus.WAITING.value
                ),
                "question": sa.bindparam("question", type_=TASKS.c.question.type),
                "answer": sa.null(),
                "waits": TASKS.c.waits + 1,
                **RELEASED,
            },
            HELD,
        ),
        answer=_held(
            {
                "status": TaskStatus.PENDING.value,
                "answer": sa.bindparam("answer", type_=TASKS.c.answer.type),
                "available_at": backend.deadline("now"),
            },
            (TaskStatus.WAITING,),
        ),
        record_attempt=backend.insert(ATTEMPTS).on_conflict_do_nothing(),
    )


@functools.cache
def record_attempts(backend: Backend) -> BulkInsert:
    """Attempts recorded together (a batch's completions, a claim's rescues), in one
    ``executemany`` on the driver: each row names its own ``id`` (``uuid7``), and they
    share ``created_at``, as rows of one transaction (a run's attempts are listed by
    ``created_at`` then ``id``, so they keep their order)."""
    return BulkInsert(
        statements(backend).record_attempt,
        ("id", "run_id", "task_id", "attempt", "status", "summary", "blocker_signature", "result"),
        shared=("created_at",),
    )


#: The most completions ``complete_many`` takes at once.
MAX_BATCH = 1000


@functools.cache
def close_many(size: int) -> sa.TextualSelect:
    """Complete ``size`` tasks in one UPDATE: each task ``:id_<n>`` (n from 0) that is
    still held under the claim ``:attempt_<n>``, with its summary ``:summary_<n>``, at
    ``:now``. Built once per size (a worker's batches are mostly of one size). Text, not
    the expression language: SQLAlchemy caches no statement with a VALUES list, and
    compiling it again on each call cost more than the statement. Where the database
    runs data-modifying CTEs, ``task_steps`` does this instead."""
    rows = ", ".join(f"(:id_{n}, :attempt_{n}, :summary_{n})" for n in range(size))
    returned = ", ".join(column.name for column in TASK_COLUMNS)
    sql = f"""WITH items (id, attempt, summary) AS (VALUES {rows})
UPDATE tasks SET status = '{TaskStatus.COMPLETED.value}', implementation_summary = items.summary,
    blocker_signature = NULL, claimed_by = NULL, lease_expires_at = NULL, updated_at = :now
FROM items WHERE tasks.id = items.id AND tasks.attempt = items.attempt
    AND tasks.status = '{TaskStatus.IN_PROGRESS.value}'
RETURNING {returned}"""
    typed = [sa.bindparam("now", type_=TASKS.c.updated_at.type)]
    for n in range(size):
        typed += [
            sa.bindparam(f"id_{n}", type_=TASKS.c.id.type),
            sa.bindparam(f"attempt_{n}", type_=sa.Integer),
            sa.bindparam(f"summary_{n}", type_=sa.String),
        ]
    return sa.text(sql).bindparams(*typed).columns(*TASK_COLUMNS)
