"""``store.executions``: the history of executions of agent code, per tenant scope.

Every call takes the tenant's ``scope_id`` first and sees only that scope: an execution
of another scope is reported as not found, and children are attached through the
composite key ``(scope_id, execution_id)``.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import Backend
from agentstore.bulk_insert import BulkInsert
from agentstore.errors import (
    AlreadyDecidedError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from agentstore.executions import query as listing
from agentstore.executions.interactions import (
    expire_overdue,
    late_question,
    of_executions_of,
    overdue,
    resume_executions,
)
from agentstore.executions.meta import read_meta
from agentstore.executions.query import ExecutionQuery
from agentstore.executions.records import (
    ExecutionMeta,
    ExecutionPage,
    ExecutionRecord,
    ExecutionView,
    InteractionRecord,
    NewToolCall,
    ToolCallRecord,
)
from agentstore.models import Execution, ExecutionInteraction, ExecutionToolCall, core_table
from agentstore.models.base import utcnow
from agentstore.operations import Repository, reads, writes
from agentstore.records import UNSET, Unset
from agentstore.statuses import (
    TERMINAL_EXECUTION_STATUSES,
    ExecutionStatus,
    InteractionStatus,
    OnExpiry,
    ToolCallStatus,
)
from agentstore.types import SerializedJSON, uuid7
from agentstore.validation import Id

#: How an execution was triggered: a kind such as ``"mcp"``, or a kind and a JSON object.
Trigger = str | tuple[str, dict[str, Any] | None] | None

EXECUTION_COLUMNS = tuple(Execution.__table__.c)
INTERACTION_COLUMNS = tuple(ExecutionInteraction.__table__.c)
TOOL_CALL_COLUMNS = tuple(ExecutionToolCall.__table__.c)
# Built once with bound parameters: tool calls are recorded on the hot path of a host.
_EXECUTIONS = core_table(Execution)
COUNT_TOOL_CALLS = (
    sa.update(_EXECUTIONS)
    .where(
        _EXECUTIONS.c.scope_id == sa.bindparam("in_scope"),
        _EXECUTIONS.c.id == sa.bindparam("execution"),
    )
    .values(tool_call_count=_EXECUTIONS.c.tool_call_count + sa.bindparam("added"))
)
_TOOL_CALLS = core_table(ExecutionToolCall)
# A batch's calls share their execution (and start running); each has its own id.
INSERT_TOOL_CALLS = BulkInsert(
    sa.insert(_TOOL_CALLS),
    ("id", "tool_path", "namespace", "args", "started_at"),
    shared=("scope_id", "execution_id", "status"),
)
RUNNING = ToolCallStatus.RUNNING.value
OPEN_STATUSES = [s.value for s in ExecutionStatus if s not in TERMINAL_EXECUTION_STATUSES]


@functools.cache
def _new_tool_calls_statement(backend: Backend) -> sa.Insert:
    """Tool calls named by the caller, skipping those recorded before: the ids inserted.
    Built once per database: a recorder names every call it records."""
    statement: sa.Insert = (
        backend.insert(_TOOL_CALLS).on_conflict_do_nothing().returning(_TOOL_CALLS.c.id)
    )
    return statement


def _milliseconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _trigger(trigger: Trigger) -> tuple[str | None, Any]:
    """The trigger's kind and its meta (checked JSON)."""
    if trigger is None:
        return None, None
    if isinstance(trigger, str):
        kind, meta = trigger, None
    elif isinstance(trigger, tuple) and len(trigger) == 2:
        kind, meta = trigger
    else:
        raise ValidationError("trigger must be a kind, or a (kind, meta) pair")
    if meta is not None and not isinstance(meta, dict):
        raise ValidationError("trigger meta must be a JSON object")
    return validation.text(kind, Execution.trigger_kind), validation.json_value(meta, "trigger")


def _scope(scope_id: str) -> str:
    return validation.text(scope_id, Execution.scope_id)


def _old(older_than: datetime | timedelta, scope_id: str | None) -> list[Any]:
    """The WHERE clauses of a retention sweep."""
    old: list[Any] = [Execution.created_at < validation.cutoff(older_than)]
    if scope_id is not None:
        old.append(Execution.scope_id == _scope(scope_id))
    return old


class ExecutionRepository(Repository, aggregate="executions"):
    """``store.executions``: the history of executions of agent code, per tenant scope."""

    __slots__ = ()

    # -- executions ---------------------------------------------------------------

    @writes
    def create(
        self,
        scope_id: str,
        code: str,
        *,
        id: Id | None = None,
        status: str = ExecutionStatus.RUNNING,
        trigger: Trigger = None,
        started_at: datetime | None = None,
    ) -> ExecutionRecord:
        """Record a new execution (``trigger``: a kind such as ``"mcp"``, or a kind and a
        JSON meta object). With the caller's ``id``, creating again the same execution
        (a retry after a lost reply) returns it and writes nothing. Raises
        ``ConflictError`` (the id is another execution's in the scope),
        ``ValidationError``."""
        kind, meta = _trigger(trigger)
        values: dict[str, Any] = {
            "scope_id": _scope(scope_id),
            "code": validation.text(code, Execution.code, required=False),
            "status": validation.status(status, ExecutionStatus).value,
            "trigger_kind": kind,
            "trigger_meta": meta,
            "started_at": validation.aware(started_at, "started_at") or utcnow(),
        }
        if id is None:
            statement = sa.insert(Execution).values(values).returning(*EXECUTION_COLUMNS)
            return ExecutionRecord.from_row(self._connection.execute(statement).one())
        values["id"] = validation.identifier(id, "id")
        insert = self._backend.insert(Execution).values(values).on_conflict_do_nothing()
        row = self._connection.execute(insert.returning(*EXECUTION_COLUMNS)).first()
        if row is not None:
            return ExecutionRecord.from_row(row)
        stored = self._get(values["scope_id"], values["id"])
        creation = ["code", "trigger_kind", "trigger_meta"] + ["started_at"] * (
            started_at is not None
        )
        if not _same(stored, values, tuple(creation)):
            raise ConflictError(f"execution {values['id']} exists in the scope, otherwise")
        return stored

    @reads
    def get(self, scope_id: str, id: Id, *, include_private: bool = False) -> ExecutionView:
        """The execution with its newest pending interaction. A question past its
        deadline is expired first (see ``expire_interactions``). Raises
        ``NotFoundError`` (absent, or in another scope)."""
        scope_id, id = _scope(scope_id), validation.identifier(id, "id")
        validation.flag(include_private, "include_private")
        of_it = [ExecutionInteraction.scope_id == scope_id, ExecutionInteraction.execution_id == id]
        late = overdue(self._backend)
        while True:
            execution = self._get(scope_id, id)
            # A question past its deadline, if any, comes first: one query either way.
            row = self._connection.execute(
                sa.select(*INTERACTION_COLUMNS, late.label("late"))
                .where(*of_it, ExecutionInteraction.status == InteractionStatus.PENDING.value)
                .order_by(
                    late.desc(),
                    ExecutionInteraction.created_at.desc(),
                    ExecutionInteraction.id.desc(),
                )
                .limit(1)
            ).first()
            if row is None or not row.late:
                break
            self._expire(of_it)
        pending = (
            None
            if row is None
            else InteractionRecord.from_row(row, include_private=include_private)
        )
        return ExecutionView(execution, pending)

    @writes
    def finish(
        self,
        scope_id: str,
        id: Id,
        status: str,
        *,
        result: Any = UNSET,
        error_text: str | Unset | None = UNSET,
        logs: list[str] | Unset | None = UNSET,
        completed_at: datetime | None = None,
    ) -> ExecutionRecord:
        """End a running (or pending, or waiting) execution as completed, failed or
        cancelled; sets the completion time (now, unless given) and ``duration_ms``.
        ``result``, ``error_text`` and ``logs`` change only when given (None clears one):
        a result stored by ``update`` stays.

        Made again after it committed (its reply was lost), with the same status and the
        same values given, it returns the execution and writes nothing. Raises
        ``InvalidTransitionError`` (ended, otherwise), ``NotFoundError``,
        ``ValidationError``."""
        ending = validation.status(status, ExecutionStatus)
        if ending not in TERMINAL_EXECUTION_STATUSES:
            raise ValidationError(f"finish needs a final status, not {ending.value!r}")
        at = validation.aware(completed_at, "completed_at")
        given = _changes(UNSET, result, error_text, logs, UNSET if at is None else at)
        scope_id, id = _scope(scope_id), validation.identifier(id, "id")
        current = self._get(scope_id, id, lock=True)
        if current.status is ending and _holds(current, given):
            return current  # a retry of this finish
        given.update(status=ending.value, completed_at=given.get("completed_at") or utcnow())
        return self._change(current, given)

    @writes
    def update(
        self,
        scope_id: str,
        id: Id,
        *,
        status: str | Unset = UNSET,
        result: Any = UNSET,
        error_text: str | Unset | None = UNSET,
        logs: list[str] | Unset | None = UNSET,
        completed_at: datetime | Unset | None = UNSET,
    ) -> ExecutionRecord:
        """Change the fields given of an execution that has not ended (a completion time
        also sets ``duration_ms``). Raises ``InvalidTransitionError``, ``NotFoundError``,
        ``ValidationError``."""
        if not isinstance(completed_at, Unset):
            completed_at = validation.aware(completed_at, "completed_at")
        values = _changes(status, result, error_text, logs, completed_at)
        scope_id, id = _scope(scope_id), validation.identifier(id, "id")
        return self._change(self._get(scope_id, id, lock=True), values)

    def _change(self, current: ExecutionRecord, values: dict[str, Any]) -> ExecutionRecord:
        """Write ``values`` (checked columns) to the execution, unless it has ended."""
        if current.status in TERMINAL_EXECUTION_STATUSES:
            raise InvalidTransitionError(
                f"execution {current.id} already ended ({current.status.value})",
                status=current.status.value,
            )
        if values.get("completed_at") is not None:
            values["duration_ms"] = _milliseconds(current.started_at, values["completed_at"])
        if not values:
            return current
        row = self._connection.execute(
            sa.update(Execution)
            .where(Execution.scope_id == current.scope_id, Execution.id == current.id)
            .values(values)
            .returning(*EXECUTION_COLUMNS)
        ).one()
        return ExecutionRecord.from_row(row)

    @reads
    def list(self, scope_id: str, query: ExecutionQuery | None = None) -> ExecutionPage:
        """One page of the scope's executions (see ``ExecutionQuery``). Raises
        ``ValidationError`` (bad filter, page size, or a cursor malformed or made for
        another sort)."""
        query = _query(query)
        statement = listing.page_statement(self._backend, _scope(scope_id), query)
        self._backend.plan_for_parameters(self._connection)
        items = [ExecutionRecord.from_row(row) for row in self._connection.execute(statement)]
        if len(items) <= query.limit:
            return ExecutionPage(items, None)
        items = items[: query.limit]
        return ExecutionPage(items, listing.next_cursor(query, items[-1]))

    @reads
    def meta(self, scope_id: str, query: ExecutionQuery | None = None) -> ExecutionMeta:
        """Counts and the chart over the executions matching the query's filters (its
        sort, page size and cursor are ignored). Raises ``ValidationError``."""
        query = _query(query)
        self._backend.plan_for_parameters(self._connection)
        return read_meta(self._connection, self._backend, _scope(scope_id), query)

    @reads
    def sweepable(self, older_than: datetime | timedelta, *, scope_id: str | None = None) -> int:
        """How many executions ``sweep`` with the same arguments would delete now."""
        statement = sa.select(sa.func.count()).select_from(Execution)
        old = _old(older_than, scope_id)
        return int(self._connection.execute(statement.where(*old)).scalar_one())

    def sweep_batch(
        self, older_than: datetime | timedelta, *, scope_id: str | None = None, batch_size: int
    ) -> int:
        """Delete up to ``batch_size`` executions created before ``older_than``, with
        their tool calls and interactions; how many. The faces' ``sweep`` runs one batch
        per transaction, so that a large sweep never holds locks for long."""
        validation.positive_int(batch_size, "batch_size", maximum=100_000)
        old = _old(older_than, scope_id)
        batch = sa.select(Execution.scope_id, Execution.id).where(*old).limit(batch_size)
        key = sa.tuple_(Execution.scope_id, Execution.id)
        return int(self._connection.execute(sa.delete(Execution).where(key.in_(batch))).rowcount)

    # -- tool calls ---------------------------------------------------------------

    @writes
    def record_tool_call(
        self,
        scope_id: str,
        execution_id: Id,
        tool_path: str,
        *,
        args: Any = None,
        namespace: str | None = None,
        started_at: datetime | None = None,
        id: Id | None = None,
    ) -> ToolCallRecord:
        """Record a tool call as running, counting it on the execution in the same
        transaction. ``namespace`` defaults to the path's first dotted segment. With the
        caller's ``id``, recording the same call again (a retry after a lost reply)
        returns it and writes nothing. Raises ``ConflictError`` (the id is another
        call's), ``NotFoundError``, ``ValidationError``."""
        call = NewToolCall(tool_path, args, namespace, started_at, id)
        [row], stored = self._insert_tool_calls(scope_id, execution_id, [call])
        if row["id"] in stored:
            return stored[row["id"]]
        # Every value is known here (the id is made client-side): the record is the row
        # as written, without reading it back.
        return ToolCallRecord(
            id=row["id"],
            scope_id=row["scope_id"],
            execution_id=row["execution_id"],
            status=ToolCallStatus.RUNNING,
            tool_path=row["tool_path"],
            namespace=row["namespace"],
            args=args,
            result=None,
            error_text=None,
            started_at=row["started_at"],
            completed_at=None,
            duration_ms=None,
        )

    @writes
    def record_tool_calls(
        self, scope_id: str, execution_id: Id, calls: Iterable[NewToolCall]
    ) -> builtins.list[UUID]:
        """Record a batch of tool calls as running, all or none, in two statements
        whatever the batch's size: the execution's count and one INSERT. Returns their
        ids in the order given (what ``finish_tool_call`` needs). Calls given with their
        ``id`` that were recorded already (a retried batch) are not recorded again.
        Raises ``ConflictError``, ``NotFoundError``, ``ValidationError``."""
        rows, _ = self._insert_tool_calls(scope_id, execution_id, calls)
        return [row["id"] for row in rows]

    def _insert_tool_calls(
        self, scope_id: str, execution_id: Id, calls: Iterable[NewToolCall]
    ) -> tuple[builtins.list[dict[str, Any]], dict[UUID, ToolCallRecord]]:
        """Check, count and insert the calls: the rows as written, and the calls that
        were recorded before (by id)."""
        scope_id = _scope(scope_id)
        execution_id = validation.identifier(execution_id, "execution_id")
        now = utcnow()  # the start of a call recorded without its own started_at
        checked = validation.sequence(calls, "calls")
        rows = [_tool_call_row(scope_id, execution_id, call, now) for call in checked]
        if any(call.id is not None for call in checked):
            return rows, self._insert_new_tool_calls(scope_id, execution_id, rows, checked)
        counted = self._connection.execute(
            COUNT_TOOL_CALLS,
            {"in_scope": scope_id, "execution": execution_id, "added": len(rows)},
        ).rowcount
        if not counted:
            raise NotFoundError(f"execution {execution_id} not found in scope {scope_id!r}")
        shared = {"scope_id": scope_id, "execution_id": execution_id, "status": RUNNING}
        INSERT_TOOL_CALLS.execute(self._connection, rows, shared)
        return rows, {}

    def _insert_new_tool_calls(
        self,
        scope_id: str,
        execution_id: UUID,
        rows: builtins.list[dict[str, Any]],
        calls: builtins.list[NewToolCall],
    ) -> dict[UUID, ToolCallRecord]:
        """Insert the calls whose ids are new and count them; the others must be the
        same calls (a retry): they are returned, by id. Raises ``ConflictError``."""
        statement = _new_tool_calls_statement(self._backend)
        inserted = set(self._connection.execute(statement, rows).scalars())
        if inserted:  # else every call was recorded before: its execution exists
            self._connection.execute(
                COUNT_TOOL_CALLS,
                {"in_scope": scope_id, "execution": execution_id, "added": len(inserted)},
            )
        again = {row["id"]: (row, call) for row, call in zip(rows, calls, strict=True)}
        for id in inserted:
            again.pop(id)
        if not again:
            return {}
        stored = self._connection.execute(
            sa.select(*TOOL_CALL_COLUMNS).where(
                ExecutionToolCall.scope_id == scope_id, ExecutionToolCall.id.in_(list(again))
            )
        )
        found: dict[UUID, ToolCallRecord] = {}
        for existing in stored:
            row, call = again[existing.id]
            fields = ("execution_id", "tool_path", "namespace", "args")
            if not _same(existing, row, fields + ("started_at",) * (call.started_at is not None)):
                raise ConflictError(f"tool call {existing.id} was recorded otherwise")
            found[existing.id] = ToolCallRecord.from_row(existing)
        return found

    @writes
    def finish_tool_call(
        self,
        scope_id: str,
        id: Id,
        status: str,
        *,
        result: Any = None,
        error_text: str | None = None,
        completed_at: datetime | None = None,
    ) -> ToolCallRecord:
        """End a running tool call as completed or failed, with its duration. Made again
        after it committed, with the same status, result and error, it returns the tool
        call and writes nothing. Raises ``InvalidTransitionError`` (ended otherwise),
        ``NotFoundError``, ``ValidationError``."""
        ending = validation.status(status, ToolCallStatus)
        if ending is ToolCallStatus.RUNNING:
            raise ValidationError("finish_tool_call needs completed or failed")
        end = validation.aware(completed_at, "completed_at") or utcnow()
        values: dict[str, Any] = {
            "status": ending.value,
            "result": validation.json_value(result, "result"),
            "error_text": validation.optional_text(error_text, ExecutionToolCall.error_text),
            "completed_at": end,
        }
        scope_id, id = _scope(scope_id), validation.identifier(id, "id")
        in_scope = [ExecutionToolCall.scope_id == scope_id, ExecutionToolCall.id == id]
        row = self._connection.execute(
            sa.select(*TOOL_CALL_COLUMNS).where(*in_scope).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"tool call {id} not found in scope {scope_id!r}")
        if row.status == ending.value and _same(row, values, ("result", "error_text")):
            return ToolCallRecord.from_row(row)  # a retry of this finish
        if row.status != ToolCallStatus.RUNNING.value:
            raise InvalidTransitionError(
                f"tool call {id} already ended ({row.status})", status=row.status
            )
        values["duration_ms"] = _milliseconds(row.started_at, end)
        updated = self._connection.execute(
            sa.update(ExecutionToolCall)
            .where(*in_scope)
            .values(values)
            .returning(*TOOL_CALL_COLUMNS)
        ).one()
        return ToolCallRecord.from_row(updated)

    @reads
    def list_tool_calls(self, scope_id: str, execution_id: Id) -> builtins.list[ToolCallRecord]:
        """The execution's tool calls in start order (empty for another scope's)."""
        statement = (
            sa.select(*TOOL_CALL_COLUMNS)
            .where(
                ExecutionToolCall.scope_id == _scope(scope_id),
                ExecutionToolCall.execution_id
                == validation.identifier(execution_id, "execution_id"),
            )
            .order_by(ExecutionToolCall.started_at, ExecutionToolCall.id)
        )
        return [ToolCallRecord.from_row(row) for row in self._connection.execute(statement)]

    # -- interactions -------------------------------------------------------------

    @writes
    def request_interaction(
        self,
        scope_id: str,
        execution_id: Id,
        kind: str,
        *,
        purpose: str | None = None,
        payload: Any = None,
        expires_in: timedelta | None = None,
        on_expiry: str = OnExpiry.CONTINUE,
    ) -> InteractionRecord:
        """Pause the execution for a person: a pending interaction, and the execution
        ``waiting_for_interaction`` (which survives a restart: see ``list_waiting``).

        ``expires_in`` gives the question a deadline, that long from now on the
        database's clock (zero: already due). Unanswered by then it becomes ``expired``
        (see ``expire_interactions``), and the execution runs again (``on_expiry=
        "continue"``) or ends ``failed`` (``"fail"``). Raises ``InvalidTransitionError``
        (execution ended), ``NotFoundError``, ``ValidationError``."""
        scope_id = _scope(scope_id)
        execution_id = validation.identifier(execution_id, "execution_id")
        values: dict[str, Any] = {
            "scope_id": scope_id,
            "execution_id": execution_id,
            "status": InteractionStatus.PENDING.value,
            "kind": validation.text(kind, ExecutionInteraction.kind),
            "purpose": validation.optional_text(purpose, ExecutionInteraction.purpose),
            "payload": validation.json_value(payload, "payload"),
            "on_expiry": validation.status(on_expiry, OnExpiry, "on_expiry").value,
        }
        deadline: dict[str, Any] = {}
        if expires_in is not None:
            wait = validation.delay(expires_in, "expires_in")
            values["expires_at"] = self._backend.deadline("expires_in")
            deadline["expires_in"] = self._backend.lease_parameter(wait)
        elif values["on_expiry"] != OnExpiry.CONTINUE.value:
            raise ValidationError("on_expiry needs a deadline: give expires_in")
        self._set_open_status(scope_id, execution_id, ExecutionStatus.WAITING_FOR_INTERACTION)
        row = self._connection.execute(
            sa.insert(ExecutionInteraction).values(values).returning(*INTERACTION_COLUMNS),
            deadline,
        ).one()
        return InteractionRecord.from_row(row)

    @writes
    def resolve_interaction(
        self,
        scope_id: str,
        id: Id,
        response: Any = None,
        response_private: Any = None,
        *,
        cancelled: bool = False,
    ) -> InteractionRecord:
        """Answer (or cancel) a pending interaction; the execution runs again once no
        other interaction of it is pending. Each is decided once: made again after it
        committed, with the same answer, it returns the interaction and writes nothing
        (a retry after a lost reply is safe). Raises ``AlreadyDecidedError`` (a
        ``ConflictError``: resolved, cancelled or expired otherwise, or past its
        deadline, when it is expired and nothing is written), ``NotFoundError``,
        ``ValidationError``."""
        values = {
            "status": (
                InteractionStatus.CANCELLED if cancelled else InteractionStatus.RESOLVED
            ).value,
            "response": validation.json_value(response, "response"),
            "response_private": validation.json_value(response_private, "response_private"),
        }
        validation.flag(cancelled, "cancelled")
        scope_id, id = _scope(scope_id), validation.identifier(id, "id")
        in_scope = [ExecutionInteraction.scope_id == scope_id, ExecutionInteraction.id == id]
        connection = self._connection
        # Locked: of a resolver and an expirer (or two resolvers), one decides, and the
        # other then finds it decided.
        current = connection.execute(
            sa.select(*INTERACTION_COLUMNS, overdue(self._backend).label("late"))
            .where(*in_scope)
            .with_for_update()
        ).first()
        if current is None:
            raise NotFoundError(f"interaction {id} not found in scope {scope_id!r}")
        answer = ("status", "response", "response_private")
        if _same(current, values, answer):
            return InteractionRecord.from_row(current)  # a retry of this answer
        if current.status != InteractionStatus.PENDING.value:
            raise AlreadyDecidedError(
                f"interaction {id} is already {current.status}", status=current.status
            )
        if current.late:
            # Expired; written down by the next read or expire_interactions (a call that
            # raises leaves the database as it was).
            raise AlreadyDecidedError(
                f"interaction {id} expired at {current.expires_at.isoformat()}, unanswered",
                status=InteractionStatus.EXPIRED.value,
            )
        row = connection.execute(
            sa.update(ExecutionInteraction)
            .where(*in_scope)
            .values(values)
            .returning(*INTERACTION_COLUMNS)
        ).one()
        resume_executions(connection, [id])
        return InteractionRecord.from_row(row)

    @reads
    def list_interactions(
        self, scope_id: str, execution_id: Id, *, include_private: bool = False
    ) -> builtins.list[InteractionRecord]:
        """The execution's interactions, oldest first (empty for another scope's); one
        past its deadline is expired first (see ``expire_interactions``)."""
        validation.flag(include_private, "include_private")
        of_it = [
            ExecutionInteraction.scope_id == _scope(scope_id),
            ExecutionInteraction.execution_id
            == validation.identifier(execution_id, "execution_id"),
        ]
        statement = (
            sa.select(*INTERACTION_COLUMNS, overdue(self._backend).label("late"))
            .where(*of_it)
            .order_by(ExecutionInteraction.created_at, ExecutionInteraction.id)
        )
        rows = self._connection.execute(statement).all()
        if any(row.late for row in rows):
            self._expire(of_it)
            rows = self._connection.execute(statement).all()
        return [InteractionRecord.from_row(row, include_private=include_private) for row in rows]

    @reads
    def list_waiting(
        self, scope_id: str, *, limit: int = 100, include_private: bool = False
    ) -> builtins.list[ExecutionView]:
        """Executions of the scope paused for a person, each with its newest pending
        interaction, oldest first: what a restarted host resumes. Questions past their
        deadline are expired first (see ``expire_interactions``): an execution they
        end or resume is not listed."""
        validation.positive_int(limit, "limit", maximum=10_000)
        late = late_question(self._backend, Execution.scope_id, Execution.id)
        statement = (
            sa.select(Execution.id, late.label("late_id"))
            .where(
                Execution.scope_id == _scope(scope_id),
                Execution.status == ExecutionStatus.WAITING_FOR_INTERACTION.value,
            )
            .order_by(Execution.created_at, Execution.id)
            .limit(limit)
        )
        while True:
            rows = self._connection.execute(statement).all()
            overdue_ids = [row.late_id for row in rows if row.late_id is not None]
            if not overdue_ids:
                break
            self._expire([of_executions_of(overdue_ids)])
        ids = [row.id for row in rows]
        return [
            self.get(scope_id, execution_id, include_private=include_private)
            for execution_id in ids
        ]

    # -- helpers ------------------------------------------------------------------

    def _expire(self, where: builtins.list[Any]) -> None:
        """Expire the questions past their deadline among ``where``, before a read
        answers. The read's only write: in a read-only transaction the face makes the
        call again as a write (``WriteNeeded``), so reads that meet no such question, by
        far the most, stay read-only and take no write lock."""
        self._write_needed()
        expire_overdue(self._connection, self._backend, where)

    def _get(self, scope_id: str, id: UUID, *, lock: bool = False) -> ExecutionRecord:
        statement = sa.select(*EXECUTION_COLUMNS).where(
            Execution.scope_id == scope_id, Execution.id == id
        )
        if lock:
            statement = statement.with_for_update()
        row = self._connection.execute(statement).first()
        if row is None:
            raise NotFoundError(f"execution {id} not found in scope {scope_id!r}")
        return ExecutionRecord.from_row(row)

    def _set_open_status(self, scope_id: str, execution_id: UUID, status: ExecutionStatus) -> None:
        moved = self._connection.execute(
            sa.update(Execution)
            .where(
                Execution.scope_id == scope_id,
                Execution.id == execution_id,
                Execution.status.in_(OPEN_STATUSES),
            )
            .values(status=status.value)
        ).rowcount
        if not moved:
            current = self._get(scope_id, execution_id)
            raise InvalidTransitionError(
                f"execution {execution_id} already ended ({current.status.value})",
                status=current.status.value,
            )


def _query(query: ExecutionQuery | None) -> ExecutionQuery:
    if query is None:
        return ExecutionQuery()
    if not isinstance(query, ExecutionQuery):
        raise ValidationError(f"expected an ExecutionQuery, got {type(query).__name__}")
    return query


def _tool_call_row(
    scope_id: str, execution_id: UUID, call: NewToolCall, now: datetime
) -> dict[str, Any]:
    """The checked tool call as the row to insert, its id made here."""
    if not isinstance(call, NewToolCall):
        raise ValidationError(f"expected a NewToolCall, got {type(call).__name__}")
    path = validation.text(call.tool_path, ExecutionToolCall.tool_path)
    namespace = call.namespace if call.namespace is not None else path.split(".", 1)[0]
    return {
        "id": uuid7() if call.id is None else validation.identifier(call.id, "id"),
        "scope_id": scope_id,
        "execution_id": execution_id,
        "status": RUNNING,
        "tool_path": path,
        "namespace": validation.text(namespace, ExecutionToolCall.namespace),
        "args": validation.json_value(call.args, "args"),
        "started_at": validation.aware(call.started_at, "started_at") or now,
    }


def _changes(
    status: str | Unset,
    result: Any,
    error_text: str | Unset | None,
    logs: list[str] | Unset | None,
    completed_at: datetime | Unset | None,
) -> dict[str, Any]:
    """The columns of an execution to write: the values given (not ``UNSET``), checked."""
    values: dict[str, Any] = {}
    if not isinstance(status, Unset):
        values["status"] = validation.status(status, ExecutionStatus).value
    if not isinstance(result, Unset):
        values["result"] = validation.json_value(result, "result")
    if not isinstance(error_text, Unset):
        values["error_text"] = validation.optional_text(error_text, Execution.error_text)
    if logs is None:
        values["logs"] = None
    elif not isinstance(logs, Unset):
        lines = validation.sequence(logs, "logs")
        if not all(isinstance(line, str) for line in lines):
            raise ValidationError("logs must be a list of strings")
        values["logs"] = lines
    if not isinstance(completed_at, Unset):
        values["completed_at"] = completed_at
    return values


def _holds(current: ExecutionRecord, values: dict[str, Any]) -> bool:
    """Whether the execution already has every value in ``values`` (checked columns)."""
    return all(_stored(value) == getattr(current, name) for name, value in values.items())


def _same(row: Any, values: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Whether the row already has the checked ``values`` of ``names``."""
    return all(_stored(values[name]) == getattr(row, name) for name in names)


def _stored(value: Any) -> Any:
    """A checked value as it reads back: checked JSON (``SerializedJSON``) parsed."""
    return json.loads(value) if isinstance(value, SerializedJSON) else value
