"""What becomes of pending interactions: deadlines, expiry, and the operators' inbox.

A question asked with ``expires_in`` has a deadline on the database's clock (so hosts on
several machines agree). Once it passes unanswered the question is ``expired``: by
``store.executions.expire_interactions()`` (bounded batches), or by the first read that
meets it (``get``, ``list_interactions``, ``list_waiting``, ``inbox``: a read-only call
that meets one is made again as a write, see ``operations.WriteNeeded``). Its execution
then runs again (``on_expiry="continue"``, once no other question of it is pending) or
ends failed at the deadline (``"fail"``; its other pending questions are cancelled:
nobody needs their answers any more). Answering a question past its deadline is refused.

Whatever decides a question locks it first, then its execution: a resolver and an
expirer of one question wait for each other, and exactly one of them decides it. An
expiry that fails an execution also locks the execution's other pending questions (to
cancel them) before the execution, so that it never holds the execution while it waits
for a question whose resolver waits for the execution (PostgreSQL: a deadlock).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agentstore import cursors, validation
from agentstore.backends import Backend
from agentstore.executions.query import cursor_timestamp, cursor_uuid
from agentstore.executions.records import ExecutionRecord, InboxItem, InboxPage, InteractionRecord
from agentstore.models import Execution, ExecutionInteraction, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.records import from_row
from agentstore.statuses import (
    TERMINAL_EXECUTION_STATUSES,
    ExecutionStatus,
    InteractionStatus,
    OnExpiry,
)

PENDING = InteractionStatus.PENDING.value
ENDED = [status.value for status in TERMINAL_EXECUTION_STATUSES]
INBOX_ORDERING = "inbox:created_at:asc"
MAX_INBOX_PAGE = 500
_OTHER = sa.orm.aliased(ExecutionInteraction)  # another question of the same execution
_TABLE = core_table(ExecutionInteraction)
_EXECUTIONS = core_table(Execution)


def overdue(backend: Backend, question: Any = ExecutionInteraction) -> sa.ColumnElement[bool]:
    """Pending, and past its deadline on the database's clock (true or false, never
    NULL, so that it sorts the same on both databases)."""
    return sa.and_(
        question.status == PENDING,
        question.expires_at.is_not(None),
        question.expires_at <= backend.clock(),
    )


def late_question(backend: Backend, scope_id: Any, execution_id: Any) -> Any:
    """A scalar subquery: a question of the execution past its deadline (NULL: none)."""
    return (
        sa.select(_OTHER.id)
        .where(
            _OTHER.scope_id == scope_id,
            _OTHER.execution_id == execution_id,
            overdue(backend, _OTHER),
        )
        .limit(1)
        .scalar_subquery()
    )


def of_executions_of(question_ids: Sequence[uuid.UUID]) -> sa.ColumnElement[bool]:
    """The questions of the executions that the questions ``question_ids`` belong to."""
    asked = sa.select(_OTHER.scope_id, _OTHER.execution_id).where(_OTHER.id.in_(question_ids))
    return sa.tuple_(ExecutionInteraction.scope_id, ExecutionInteraction.execution_id).in_(asked)


def expire_overdue(
    connection: Connection,
    backend: Backend,
    where: Sequence[sa.ColumnElement[bool]],
    *,
    batch_size: int | None = None,
) -> int:
    """Expire the questions past their deadline among ``where``, with what that does to
    their executions; how many. A batch (``batch_size``: the oldest deadlines first)
    passes over questions another transaction holds (PostgreSQL: SKIP LOCKED), so that
    expirers never queue on one another. Without one, every overdue question of ``where``
    is expired, waiting for a resolver that holds one: a read must never answer with a
    question past its deadline still pending."""
    chosen = sa.select(ExecutionInteraction.id).where(overdue(backend), *where)
    if batch_size is None:
        # Locked in id order first: two expirers locking the same questions in orders
        # of their own would deadlock (PostgreSQL; SQLite has one writer).
        key = ExecutionInteraction.id.in_(
            chosen.order_by(ExecutionInteraction.id).with_for_update()
        )
    else:
        chosen = chosen.order_by(ExecutionInteraction.expires_at).limit(batch_size)
        key = backend.claimable(chosen, ExecutionInteraction.id)
    # The overdue test again, on the row itself: a question resolved while this waited
    # for its lock is no longer pending, and is left as it was decided.
    expired = connection.execute(
        sa.update(ExecutionInteraction)
        .where(key, overdue(backend))
        .values(status=InteractionStatus.EXPIRED.value)
        .returning(ExecutionInteraction.id, ExecutionInteraction.on_expiry)
    ).all()
    failing = [row.id for row in expired if row.on_expiry == OnExpiry.FAIL.value]
    going_on = [row.id for row in expired if row.on_expiry != OnExpiry.FAIL.value]
    if failing:
        _fail_executions(connection, backend, failing)
    if going_on:
        resume_executions(connection, going_on)
    return len(expired)


def _executions_of(question_ids: Sequence[uuid.UUID]) -> sa.ColumnElement[bool]:
    asked = sa.select(_OTHER.scope_id, _OTHER.execution_id).where(_OTHER.id.in_(question_ids))
    return sa.tuple_(Execution.scope_id, Execution.id).in_(asked)


def _lock_executions(connection: Connection, question_ids: Sequence[uuid.UUID]) -> list[Any]:
    """Lock the executions of these questions in key order (two writers never wait on
    each other in a circle): their keys, start times and statuses."""
    statement = (
        sa.select(Execution.scope_id, Execution.id, Execution.started_at, Execution.status)
        .where(_executions_of(question_ids))
        .order_by(Execution.scope_id, Execution.id)
        .with_for_update()
    )
    return list(connection.execute(statement))


def resume_executions(connection: Connection, question_ids: Sequence[uuid.UUID]) -> None:
    """The executions of these questions (just decided) run again where they wait and
    no other question of theirs is pending. Each is locked before its questions are
    counted: of two questions of one execution decided at once, the second to take the
    lock counts after the first committed, so the last one decided resumes it."""
    _lock_executions(connection, question_ids)
    still_pending = sa.exists().where(
        ExecutionInteraction.scope_id == Execution.scope_id,
        ExecutionInteraction.execution_id == Execution.id,
        ExecutionInteraction.status == PENDING,
    )
    connection.execute(
        sa.update(Execution)
        .where(
            _executions_of(question_ids),
            Execution.status == ExecutionStatus.WAITING_FOR_INTERACTION.value,
            ~still_pending,
        )
        .values(status=ExecutionStatus.RUNNING.value)
    )


def _lock_other_questions(
    connection: Connection, backend: Backend, question_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Lock the other pending questions of these questions' executions, in id order:
    one that is not past its deadline is waited for (whoever holds it decides it, or
    lets it go); one that is, and that another holds, is passed over (it is being
    expired, or refused to a resolver, and stays for the next expiry). Their ids."""
    others = sa.select(ExecutionInteraction.id).where(
        of_executions_of(question_ids),
        ExecutionInteraction.status == PENDING,
        ExecutionInteraction.id.not_in(question_ids),
    )
    on_time = others.where(~overdue(backend)).order_by(ExecutionInteraction.id)
    late = others.where(overdue(backend)).order_by(ExecutionInteraction.id)
    free_late = sa.select(ExecutionInteraction.id).where(
        backend.claimable(late, ExecutionInteraction.id)  # passing over the held ones
    )
    return [
        *connection.execute(on_time.with_for_update()).scalars(),
        *connection.execute(free_late).scalars(),
    ]


def _fail_executions(
    connection: Connection, backend: Backend, question_ids: list[uuid.UUID]
) -> None:
    """End the executions of these expired questions as failed at the (earliest)
    deadline, with the question in their error, and cancel their other pending ones."""
    others = _lock_other_questions(connection, backend, question_ids)
    questions = connection.execute(
        sa.select(
            ExecutionInteraction.id,
            ExecutionInteraction.scope_id,
            ExecutionInteraction.execution_id,
            ExecutionInteraction.kind,
            ExecutionInteraction.expires_at,
        )
        .where(ExecutionInteraction.id.in_(question_ids))
        .order_by(ExecutionInteraction.expires_at)
    ).all()
    first: dict[tuple[str, uuid.UUID], Any] = {}
    for question in questions:
        first.setdefault((question.scope_id, question.execution_id), question)
    ending = []
    for execution in _lock_executions(connection, question_ids):
        if execution.status in ENDED:
            continue  # ended meanwhile (its host finished it): it keeps its own end
        question = first[(execution.scope_id, execution.id)]
        deadline: datetime = question.expires_at
        elapsed = (deadline - execution.started_at).total_seconds()
        ending.append(
            {
                "in_scope": execution.scope_id,
                "execution": execution.id,
                "completed_at": deadline,
                "duration_ms": max(0, round(elapsed * 1000)),
                "error_text": (
                    f"interaction {question.id} ({question.kind}) expired unanswered "
                    f"at {deadline.isoformat()}"
                ),
            }
        )
    if not ending:
        return
    connection.execute(
        sa.update(_EXECUTIONS)
        .where(
            _EXECUTIONS.c.scope_id == sa.bindparam("in_scope"),
            _EXECUTIONS.c.id == sa.bindparam("execution"),
        )
        .values(status=ExecutionStatus.FAILED.value),
        ending,
    )
    if others:
        connection.execute(
            sa.update(_TABLE)
            .where(
                _TABLE.c.id.in_(others),  # of these executions' scopes
                _TABLE.c.execution_id.in_([e["execution"] for e in ending]),
                _TABLE.c.status == PENDING,
            )
            .values(status=InteractionStatus.CANCELLED.value)
        )


class PendingInteractions(Repository, aggregate="executions"):
    """The batches of ``store.executions.expire_interactions``, and the inbox."""

    __slots__ = ()

    @writes
    def expire_batch(self, scope_id: str | None, batch_size: int) -> int:
        """Expire up to ``batch_size`` questions past their deadline (of one scope, or
        of all), with their effects on their executions; how many."""
        validation.positive_int(batch_size, "batch_size", maximum=10_000)
        where = [] if scope_id is None else [ExecutionInteraction.scope_id == _scope(scope_id)]
        return expire_overdue(self._connection, self._backend, where, batch_size=batch_size)

    @reads
    def inbox(self, scope_id: str | None, limit: int, after: str | None) -> InboxPage:
        """One page of the pending questions (of one scope, or of all), oldest first,
        each with its execution; never one past its deadline (expired first), nor one
        of an execution that has ended."""
        limit = validation.positive_int(limit, "limit", maximum=MAX_INBOX_PAGE)
        where = [ExecutionInteraction.status == PENDING]
        if scope_id is not None:
            where.append(ExecutionInteraction.scope_id == _scope(scope_id))
        if after is not None:
            created_at, question_id = cursors.decode(after, INBOX_ORDERING, 2)
            position = sa.tuple_(ExecutionInteraction.created_at, ExecutionInteraction.id)
            after_it = sa.tuple_(cursor_timestamp(created_at), cursor_uuid(question_id))
            where.append(position > after_it)
        while True:
            rows = self._connection.execute(self._page(where, limit)).all()
            late = [row.late_id for row in rows if row.late_id is not None]
            if not late:
                break
            # A question on the page, or another of its execution, is past its
            # deadline: it expires first (which may end the execution, and cancel the
            # execution's other questions), then the page is read again.
            self._write_needed()
            expire_overdue(self._connection, self._backend, [of_executions_of(late)])
        items = [_item(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return InboxPage(items, None)
        last = items[-1].interaction
        cursor = cursors.encode(INBOX_ORDERING, [last.created_at.isoformat(), str(last.id)])
        return InboxPage(items, cursor)

    def _page(self, where: list[sa.ColumnElement[bool]], limit: int) -> sa.Select[Any]:
        """The page's rows (one more, to know whether another page follows): each
        question's columns, its execution's (prefixed ``e_``), and ``late_id``: a
        question of its execution (itself, or another) past its deadline."""
        question = ExecutionInteraction
        late = late_question(self._backend, question.scope_id, question.execution_id)
        return (
            sa.select(
                *_TABLE.c,
                *(column.label(f"e_{column.name}") for column in _EXECUTIONS.c),
                late.label("late_id"),
            )
            .join(
                Execution,
                sa.and_(
                    Execution.scope_id == question.scope_id,
                    Execution.id == question.execution_id,
                ),
            )
            .where(*where, Execution.status.not_in(ENDED))
            .order_by(question.created_at, question.id)
            .limit(limit + 1)
        )


def _item(row: Any) -> InboxItem:
    mapping = row._mapping
    execution = {name[2:]: value for name, value in mapping.items() if name.startswith("e_")}
    return InboxItem(
        InteractionRecord.from_row(row),
        from_row(ExecutionRecord, execution, status=ExecutionStatus(execution["status"])),
    )


def _scope(scope_id: str) -> str:
    return validation.text(scope_id, ExecutionInteraction.scope_id)
