"""``store.executions``: the history of executions of agent code, per tenant scope.

Every call takes the tenant's ``scope_id`` first and sees only that scope: an execution
of another scope is reported as not found, and children are attached through the
composite key ``(scope_id, execution_id)``.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agentstore import validation
from agentstore.backends import Backend
from agentstore.boundary import Transactions
from agentstore.errors import InvalidTransitionError, NotFoundError, ValidationError
from agentstore.executions import query as listing
from agentstore.executions.meta import read_meta
from agentstore.executions.query import ExecutionQuery
from agentstore.executions.recorder import Recorder, Trigger
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
from agentstore.records import UNSET, Unset
from agentstore.statuses import (
    TERMINAL_EXECUTION_STATUSES,
    ExecutionStatus,
    InteractionStatus,
    ToolCallStatus,
)
from agentstore.types import uuid7

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
INSERT_TOOL_CALLS = sa.insert(core_table(ExecutionToolCall))
OPEN_STATUSES = [s.value for s in ExecutionStatus if s not in TERMINAL_EXECUTION_STATUSES]


def _milliseconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _trigger(trigger: Trigger) -> tuple[str | None, Any]:
    """The trigger's kind and its meta (checked JSON)."""
    if trigger is None:
        return None, None
    kind, meta = (trigger, None) if isinstance(trigger, str) else trigger
    if meta is not None and not isinstance(meta, dict):
        raise ValidationError("trigger meta must be a JSON object")
    return validation.text(kind, Execution.trigger_kind), validation.json_value(meta, "trigger")


def _old(older_than: datetime | timedelta, scope_id: str | None) -> list[Any]:
    """The WHERE clauses of a retention sweep."""
    cutoff = (
        utcnow() - older_than
        if isinstance(older_than, timedelta)
        else validation.aware(older_than, "older_than")
    )
    old: list[Any] = [Execution.created_at < cutoff]
    if scope_id is not None:
        old.append(Execution.scope_id == scope_id)
    return old


class ExecutionRepository:
    """``store.executions``."""

    def __init__(self, transactions: Transactions, backend: Backend) -> None:
        self._tx = transactions
        self._backend = backend

    # -- executions ---------------------------------------------------------------

    def create(
        self,
        scope_id: str,
        code: str,
        *,
        id: uuid.UUID | None = None,
        status: str = ExecutionStatus.RUNNING,
        trigger: Trigger = None,
        started_at: datetime | None = None,
    ) -> ExecutionRecord:
        """Record a new execution (``trigger``: a kind such as ``"mcp"``, or a kind and a
        JSON meta object). Raises ``ConflictError`` (the id exists in the scope),
        ``ValidationError``."""
        kind, meta = _trigger(trigger)
        values: dict[str, Any] = {
            "scope_id": validation.text(scope_id, Execution.scope_id),
            "code": validation.text(code, Execution.code, required=False),
            "status": validation.status(status, ExecutionStatus).value,
            "trigger_kind": kind,
            "trigger_meta": meta,
            "started_at": validation.aware(started_at, "started_at") or utcnow(),
        }
        if id is not None:
            values["id"] = id
        statement = sa.insert(Execution).values(values).returning(*EXECUTION_COLUMNS)
        with self._tx.write() as connection:
            return ExecutionRecord.from_row(connection.execute(statement).one())

    def get(self, scope_id: str, id: uuid.UUID, *, include_private: bool = False) -> ExecutionView:
        """The execution with its newest pending interaction. Raises ``NotFoundError``
        (absent, or in another scope)."""
        with self._tx.read() as connection:
            execution = self._get(connection, scope_id, id)
            row = connection.execute(
                sa.select(*INTERACTION_COLUMNS)
                .where(
                    ExecutionInteraction.scope_id == scope_id,
                    ExecutionInteraction.execution_id == id,
                    ExecutionInteraction.status == InteractionStatus.PENDING.value,
                )
                .order_by(ExecutionInteraction.created_at.desc(), ExecutionInteraction.id.desc())
                .limit(1)
            ).first()
        pending = (
            None
            if row is None
            else InteractionRecord.from_row(row, include_private=include_private)
        )
        return ExecutionView(execution, pending)

    def finish(
        self,
        scope_id: str,
        id: uuid.UUID,
        status: str,
        *,
        result: Any = None,
        error_text: str | None = None,
        logs: list[str] | None = None,
        completed_at: datetime | None = None,
    ) -> ExecutionRecord:
        """End a running (or pending, or waiting) execution as completed, failed or
        cancelled; sets the completion time and ``duration_ms``. Raises
        ``InvalidTransitionError`` (already ended), ``NotFoundError``, ``ValidationError``."""
        ending = validation.status(status, ExecutionStatus)
        if ending not in TERMINAL_EXECUTION_STATUSES:
            raise ValidationError(f"finish needs a final status, not {ending.value!r}")
        return self.update(
            scope_id,
            id,
            status=ending,
            result=result,
            error_text=error_text,
            logs=logs,
            completed_at=validation.aware(completed_at, "completed_at") or utcnow(),
        )

    def update(
        self,
        scope_id: str,
        id: uuid.UUID,
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
        values: dict[str, Any] = {}
        if not isinstance(status, Unset):
            values["status"] = validation.status(status, ExecutionStatus).value
        if not isinstance(result, Unset):
            values["result"] = validation.json_value(result, "result")
        if not isinstance(error_text, Unset):
            values["error_text"] = validation.optional_text(error_text, Execution.error_text)
        if not isinstance(logs, Unset):
            if logs is not None and not all(isinstance(line, str) for line in logs):
                raise ValidationError("logs must be a list of strings")
            values["logs"] = None if logs is None else list(logs)
        if not isinstance(completed_at, Unset):
            values["completed_at"] = validation.aware(completed_at, "completed_at")
        with self._tx.write() as connection:
            current = self._get(connection, scope_id, id, lock=True)
            if current.status in TERMINAL_EXECUTION_STATUSES:
                raise InvalidTransitionError(
                    f"execution {id} already ended ({current.status.value})"
                )
            if values.get("completed_at") is not None:
                values["duration_ms"] = _milliseconds(current.started_at, values["completed_at"])
            if not values:
                return current
            row = connection.execute(
                sa.update(Execution)
                .where(Execution.scope_id == scope_id, Execution.id == id)
                .values(values)
                .returning(*EXECUTION_COLUMNS)
            ).one()
            return ExecutionRecord.from_row(row)

    def list(self, scope_id: str, query: ExecutionQuery | None = None) -> ExecutionPage:
        """One page of the scope's executions (see ``ExecutionQuery``). Raises
        ``ValidationError`` (bad filter, page size, or a cursor malformed or made for
        another sort)."""
        query = query or ExecutionQuery()
        statement = listing.page_statement(self._backend, scope_id, query)
        with self._tx.read() as connection:
            self._backend.plan_for_parameters(connection)
            items = [ExecutionRecord.from_row(row) for row in connection.execute(statement)]
        if len(items) <= query.limit:
            return ExecutionPage(items, None)
        items = items[: query.limit]
        return ExecutionPage(items, listing.next_cursor(query, items[-1]))

    def meta(self, scope_id: str, query: ExecutionQuery | None = None) -> ExecutionMeta:
        """Counts and the chart over the executions matching the query's filters (its
        sort, page size and cursor are ignored). Raises ``ValidationError``."""
        with self._tx.read() as connection:
            self._backend.plan_for_parameters(connection)
            return read_meta(connection, self._backend, scope_id, query or ExecutionQuery())

    def sweepable(self, older_than: datetime | timedelta, *, scope_id: str | None = None) -> int:
        """How many executions ``sweep`` with the same arguments would delete now."""
        statement = sa.select(sa.func.count()).select_from(Execution)
        with self._tx.read() as connection:
            return int(
                connection.execute(statement.where(*_old(older_than, scope_id))).scalar_one()
            )

    def sweep(
        self,
        older_than: datetime | timedelta,
        *,
        scope_id: str | None = None,
        batch_size: int = 1000,
    ) -> int:
        """Delete executions created before ``older_than`` (a time, or an age), with
        their tool calls and interactions, ``batch_size`` per transaction so a large
        sweep never holds locks for long. Returns how many executions were deleted."""
        validation.positive_int(batch_size, "batch_size", maximum=100_000)
        old = _old(older_than, scope_id)
        batch = sa.select(Execution.scope_id, Execution.id).where(*old).limit(batch_size)
        key = sa.tuple_(Execution.scope_id, Execution.id)
        deleted = 0
        while True:
            with self._tx.write() as connection:
                count = connection.execute(sa.delete(Execution).where(key.in_(batch))).rowcount
            deleted += count
            if count < batch_size:
                return deleted

    # -- tool calls ---------------------------------------------------------------

    def record_tool_call(
        self,
        scope_id: str,
        execution_id: uuid.UUID,
        tool_path: str,
        *,
        args: Any = None,
        namespace: str | None = None,
        started_at: datetime | None = None,
    ) -> ToolCallRecord:
        """Record a tool call as running, counting it on the execution in the same
        transaction. ``namespace`` defaults to the path's first dotted segment. Raises
        ``NotFoundError``, ``ValidationError``."""
        call = NewToolCall(tool_path, args, namespace, started_at)
        [row] = self._insert_tool_calls(scope_id, execution_id, [call])
        # Every value is known here (the id is made client-side): the record is the row
        # as written, without reading it back.
        return ToolCallRecord(
            id=row["id"],
            scope_id=scope_id,
            execution_id=execution_id,
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

    def record_tool_calls(
        self, scope_id: str, execution_id: uuid.UUID, calls: Iterable[NewToolCall]
    ) -> builtins.list[uuid.UUID]:
        """Record a batch of tool calls as running, all or none, in two statements
        whatever the batch's size: the execution's count and one INSERT. Returns their
        ids in the order given (what ``finish_tool_call`` needs). Raises
        ``NotFoundError``, ``ValidationError``."""
        return [row["id"] for row in self._insert_tool_calls(scope_id, execution_id, calls)]

    def _insert_tool_calls(
        self, scope_id: str, execution_id: uuid.UUID, calls: Iterable[NewToolCall]
    ) -> builtins.list[dict[str, Any]]:
        """Check, count and insert the calls; the rows as written."""
        now = utcnow()  # the start of a call recorded without its own started_at
        rows = [_tool_call_row(scope_id, execution_id, call, now) for call in calls]
        with self._tx.write() as connection:
            counted = connection.execute(
                COUNT_TOOL_CALLS,
                {"in_scope": scope_id, "execution": execution_id, "added": len(rows)},
            ).rowcount
            if not counted:
                raise NotFoundError(f"execution {execution_id} not found in scope {scope_id!r}")
            if rows:
                connection.execute(INSERT_TOOL_CALLS, rows)
        return rows

    def finish_tool_call(
        self,
        scope_id: str,
        id: uuid.UUID,
        status: str,
        *,
        result: Any = None,
        error_text: str | None = None,
        completed_at: datetime | None = None,
    ) -> ToolCallRecord:
        """End a running tool call as completed or failed, with its duration. Raises
        ``InvalidTransitionError`` (already ended), ``NotFoundError``, ``ValidationError``."""
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
        in_scope = [ExecutionToolCall.scope_id == scope_id, ExecutionToolCall.id == id]
        with self._tx.write() as connection:
            row = connection.execute(
                sa.select(ExecutionToolCall.status, ExecutionToolCall.started_at)
                .where(*in_scope)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"tool call {id} not found in scope {scope_id!r}")
            if row.status != ToolCallStatus.RUNNING.value:
                raise InvalidTransitionError(f"tool call {id} already ended ({row.status})")
            values["duration_ms"] = _milliseconds(row.started_at, end)
            updated = connection.execute(
                sa.update(ExecutionToolCall)
                .where(*in_scope)
                .values(values)
                .returning(*TOOL_CALL_COLUMNS)
            ).one()
            return ToolCallRecord.from_row(updated)

    def list_tool_calls(
        self, scope_id: str, execution_id: uuid.UUID
    ) -> builtins.list[ToolCallRecord]:
        """The execution's tool calls in start order (empty for another scope's)."""
        statement = (
            sa.select(*TOOL_CALL_COLUMNS)
            .where(
                ExecutionToolCall.scope_id == scope_id,
                ExecutionToolCall.execution_id == execution_id,
            )
            .order_by(ExecutionToolCall.started_at, ExecutionToolCall.id)
        )
        with self._tx.read() as connection:
            return [ToolCallRecord.from_row(row) for row in connection.execute(statement)]

    # -- interactions -------------------------------------------------------------

    def request_interaction(
        self,
        scope_id: str,
        execution_id: uuid.UUID,
        kind: str,
        *,
        purpose: str | None = None,
        payload: Any = None,
    ) -> InteractionRecord:
        """Pause the execution for a person: a pending interaction, and the execution
        ``waiting_for_interaction`` (which survives a restart: see ``list_waiting``).
        Raises ``InvalidTransitionError`` (execution ended), ``NotFoundError``,
        ``ValidationError``."""
        values = {
            "scope_id": scope_id,
            "execution_id": execution_id,
            "status": InteractionStatus.PENDING.value,
            "kind": validation.text(kind, ExecutionInteraction.kind),
            "purpose": validation.optional_text(purpose, ExecutionInteraction.purpose),
            "payload": validation.json_value(payload, "payload"),
        }
        with self._tx.write() as connection:
            self._set_open_status(
                connection, scope_id, execution_id, ExecutionStatus.WAITING_FOR_INTERACTION
            )
            row = connection.execute(
                sa.insert(ExecutionInteraction).values(values).returning(*INTERACTION_COLUMNS)
            ).one()
            return InteractionRecord.from_row(row)

    def resolve_interaction(
        self,
        scope_id: str,
        id: uuid.UUID,
        response: Any = None,
        response_private: Any = None,
        *,
        cancelled: bool = False,
    ) -> InteractionRecord:
        """Answer (or cancel) a pending interaction; the execution runs again once no
        other interaction of it is pending. Raises ``InvalidTransitionError`` (already
        answered), ``NotFoundError``, ``ValidationError``."""
        values = {
            "status": (
                InteractionStatus.CANCELLED if cancelled else InteractionStatus.RESOLVED
            ).value,
            "response": validation.json_value(response, "response"),
            "response_private": validation.json_value(response_private, "response_private"),
        }
        in_scope = [ExecutionInteraction.scope_id == scope_id, ExecutionInteraction.id == id]
        with self._tx.write() as connection:
            current = connection.execute(
                sa.select(ExecutionInteraction.status, ExecutionInteraction.execution_id)
                .where(*in_scope)
                .with_for_update()
            ).first()
            if current is None:
                raise NotFoundError(f"interaction {id} not found in scope {scope_id!r}")
            if current.status != InteractionStatus.PENDING.value:
                raise InvalidTransitionError(f"interaction {id} is already {current.status}")
            row = connection.execute(
                sa.update(ExecutionInteraction)
                .where(*in_scope)
                .values(values)
                .returning(*INTERACTION_COLUMNS)
            ).one()
            still_pending = connection.execute(
                sa.select(ExecutionInteraction.id)
                .where(
                    ExecutionInteraction.scope_id == scope_id,
                    ExecutionInteraction.execution_id == current.execution_id,
                    ExecutionInteraction.status == InteractionStatus.PENDING.value,
                )
                .limit(1)
            ).first()
            if still_pending is None:
                connection.execute(
                    sa.update(Execution)
                    .where(
                        Execution.scope_id == scope_id,
                        Execution.id == current.execution_id,
                        Execution.status == ExecutionStatus.WAITING_FOR_INTERACTION.value,
                    )
                    .values(status=ExecutionStatus.RUNNING.value)
                )
            return InteractionRecord.from_row(row)

    def list_interactions(
        self, scope_id: str, execution_id: uuid.UUID, *, include_private: bool = False
    ) -> builtins.list[InteractionRecord]:
        """The execution's interactions, oldest first (empty for another scope's)."""
        statement = (
            sa.select(*INTERACTION_COLUMNS)
            .where(
                ExecutionInteraction.scope_id == scope_id,
                ExecutionInteraction.execution_id == execution_id,
            )
            .order_by(ExecutionInteraction.created_at, ExecutionInteraction.id)
        )
        with self._tx.read() as connection:
            return [
                InteractionRecord.from_row(row, include_private=include_private)
                for row in connection.execute(statement)
            ]

    def list_waiting(
        self, scope_id: str, *, limit: int = 100, include_private: bool = False
    ) -> builtins.list[ExecutionView]:
        """Executions of the scope paused for a person, each with its newest pending
        interaction, oldest first: what a restarted host resumes."""
        validation.positive_int(limit, "limit", maximum=10_000)
        statement = (
            sa.select(*EXECUTION_COLUMNS)
            .where(
                Execution.scope_id == scope_id,
                Execution.status == ExecutionStatus.WAITING_FOR_INTERACTION.value,
            )
            .order_by(Execution.created_at, Execution.id)
            .limit(limit)
        )
        with self._tx.read() as connection:
            ids = [row.id for row in connection.execute(statement)]
            return [
                self.get(scope_id, execution_id, include_private=include_private)
                for execution_id in ids
            ]

    # -- recording ----------------------------------------------------------------

    @contextmanager
    def recording(self, scope_id: str, code: str, *, trigger: Trigger = None) -> Iterator[Recorder]:
        """Record one execution around a block of host code (see ``Recorder``). Storage
        faults never break the block; they are logged and counted on the recorder."""
        recorder = Recorder(self, scope_id, code, trigger)
        with recorder:
            yield recorder

    # -- helpers ------------------------------------------------------------------

    def _get(
        self, connection: Connection, scope_id: str, id: uuid.UUID, *, lock: bool = False
    ) -> ExecutionRecord:
        statement = sa.select(*EXECUTION_COLUMNS).where(
            Execution.scope_id == scope_id, Execution.id == id
        )
        if lock:
            statement = statement.with_for_update()
        row = connection.execute(statement).first()
        if row is None:
            raise NotFoundError(f"execution {id} not found in scope {scope_id!r}")
        return ExecutionRecord.from_row(row)

    def _set_open_status(
        self,
        connection: Connection,
        scope_id: str,
        execution_id: uuid.UUID,
        status: ExecutionStatus,
    ) -> None:
        moved = connection.execute(
            sa.update(Execution)
            .where(
                Execution.scope_id == scope_id,
                Execution.id == execution_id,
                Execution.status.in_(OPEN_STATUSES),
            )
            .values(status=status.value)
        ).rowcount
        if not moved:
            current = self._get(connection, scope_id, execution_id)
            raise InvalidTransitionError(
                f"execution {execution_id} already ended ({current.status.value})"
            )


def _tool_call_row(
    scope_id: str, execution_id: uuid.UUID, call: NewToolCall, now: datetime
) -> dict[str, Any]:
    """The checked tool call as the row to insert, its id made here."""
    path = validation.text(call.tool_path, ExecutionToolCall.tool_path)
    namespace = call.namespace if call.namespace is not None else path.split(".", 1)[0]
    return {
        "id": uuid7(),
        "scope_id": scope_id,
        "execution_id": execution_id,
        "status": ToolCallStatus.RUNNING.value,
        "tool_path": path,
        "namespace": validation.text(namespace, ExecutionToolCall.namespace),
        "args": validation.json_value(call.args, "args"),
        "started_at": validation.aware(call.started_at, "started_at") or now,
    }
