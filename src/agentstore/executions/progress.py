"""What a recorder writes: an execution and its tool calls as they stand, saved in one
transaction per flush rather than one per step (see ``executions.recorder``).

A save repeats safely: the recorder names the execution and every tool call, the
execution is inserted only if absent, a tool call is inserted or brought forward (a
call that has ended is never set running again), and an execution already ended the
same way is left as it is. So a flush whose reply was lost is simply made again.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import Backend
from agentstore.bulk_insert import BulkInsert
from agentstore.driver_statements import run_on_driver
from agentstore.errors import InvalidTransitionError, NotFoundError
from agentstore.models import Execution, ExecutionToolCall, core_table
from agentstore.models.base import utcnow
from agentstore.operations import Repository, writes, writes_in_one_statement
from agentstore.statuses import TERMINAL_EXECUTION_STATUSES, ExecutionStatus, ToolCallStatus

_EXECUTIONS = core_table(Execution)
_TOOL_CALLS = core_table(ExecutionToolCall)
_OPEN = [status.value for status in ExecutionStatus if status not in TERMINAL_EXECUTION_STATUSES]
#: What a later save of a tool call may change.
_CALL_PROGRESS = ("status", "result", "error_text", "completed_at", "duration_ms")


def milliseconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


@dataclass(frozen=True, slots=True)
class CallState:
    """A tool call as the recorder last saw it: running, or ended. Made by ``started``
    (which checks what the caller gave) and ``ended``."""

    id: UUID
    tool_path: str
    namespace: str
    args: Any  # checked JSON
    started_at: datetime
    status: str = ToolCallStatus.RUNNING.value
    result: Any = None
    error_text: str | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None

    @classmethod
    def started(cls, id: UUID, tool_path: str, args: Any) -> CallState:
        """A call starting now. Raises ``ValidationError`` (a path too long, args that
        are not JSON)."""
        path = validation.text(tool_path, ExecutionToolCall.tool_path)
        namespace = validation.text(path.split(".", 1)[0], ExecutionToolCall.namespace)
        return cls(id, path, namespace, validation.json_value(args, "args"), utcnow())

    def ended(
        self, status: ToolCallStatus, *, result: Any = None, error_text: str | None = None
    ) -> CallState:
        """The call ending now. Raises ``ValidationError`` (a result that is not JSON)."""
        end = utcnow()
        return dataclasses.replace(
            self,
            status=status.value,
            result=validation.json_value(result, "result"),
            error_text=validation.optional_text(error_text, ExecutionToolCall.error_text),
            completed_at=end,
            duration_ms=milliseconds(self.started_at, end),
        )


@dataclass(frozen=True, slots=True)
class Ending:
    """How a recorded execution ended (checked by ``Ending.of``)."""

    status: ExecutionStatus
    result: Any
    error_text: str | None
    logs: list[str]
    completed_at: datetime
    duration_ms: int

    @classmethod
    def of(
        cls,
        status: ExecutionStatus,
        result: Any,
        error_text: str | None,
        logs: list[str],
        started_at: datetime,
    ) -> Ending:
        """The execution that began at ``started_at`` ending now. Raises
        ``ValidationError`` (a result that is not JSON, an error too long)."""
        end = utcnow()
        return cls(
            status,
            validation.json_value(result, "result"),
            validation.optional_text(error_text, Execution.error_text),
            logs,
            end,
            milliseconds(started_at, end),
        )


_CALL_COLUMNS = tuple(field.name for field in dataclasses.fields(CallState))


@functools.cache
def _save_calls(backend: Backend) -> BulkInsert:
    """Insert tool calls, or bring forward those saved before while they ran. Built once
    per database."""
    insert = backend.insert(_TOOL_CALLS)
    statement: sa.Insert = insert.on_conflict_do_update(
        index_elements=[_TOOL_CALLS.c.id],
        set_={name: insert.excluded[name] for name in _CALL_PROGRESS},
        where=_TOOL_CALLS.c.status == ToolCallStatus.RUNNING.value,
    )
    return BulkInsert(statement, _CALL_COLUMNS, shared=("scope_id", "execution_id"))


@functools.cache
def _create(backend: Backend) -> sa.Insert:
    """Insert the execution unless it exists: its id if inserted (RETURNING, as a
    conflict's rowcount is not reported alike by every driver)."""
    statement: sa.Insert = (
        backend.insert(_EXECUTIONS).on_conflict_do_nothing().returning(_EXECUTIONS.c.id)
    )
    return statement


_COUNT = (
    sa.select(sa.func.count())
    .where(
        _TOOL_CALLS.c.scope_id == _EXECUTIONS.c.scope_id,
        _TOOL_CALLS.c.execution_id == _EXECUTIONS.c.id,
    )
    .scalar_subquery()
)
_THIS = (
    _EXECUTIONS.c.scope_id == sa.bindparam("in_scope"),
    _EXECUTIONS.c.id == sa.bindparam("execution"),
)
#: Built once, with bound parameters: a recorder saves on every flush.
_COUNT_CALLS = sa.update(_EXECUTIONS).where(*_THIS).values(tool_call_count=_COUNT)
_ENDING_COLUMNS = ("status", "result", "error_text", "logs", "completed_at", "duration_ms")
_END = (
    sa.update(_EXECUTIONS)
    .where(*_THIS, _EXECUTIONS.c.status.in_(_OPEN))
    .values({name: sa.bindparam(name, type_=_EXECUTIONS.c[name].type) for name in _ENDING_COLUMNS})
)
_END_AND_COUNT = _END.values(tool_call_count=_COUNT)


def _ending_values(ending: Ending) -> dict[str, Any]:
    values = {name: getattr(ending, name) for name in _ENDING_COLUMNS}
    values["status"] = ending.status.value
    return values


class RecordingProgress(Repository, aggregate="executions"):
    """The one write of a recorder's flush."""

    __slots__ = ()

    @writes
    def save(
        self,
        scope_id: str,
        execution_id: UUID,
        *,
        create: dict[str, Any] | None,
        calls: Sequence[CallState],
        ending: Ending | None,
    ) -> None:
        """Save a recording as it stands: ``create`` (the execution's columns, when it
        may not be saved yet) inserts it unless it exists; ``calls`` are inserted or
        brought forward, and the execution's count of them set from the table; an
        ``ending`` ends the execution. Raises ``InvalidTransitionError`` (the execution
        was ended otherwise, say by an interaction's deadline), ``NotFoundError``."""
        if create is not None and ending is not None:
            # Never saved, and ended already (a short block): written as it ended, in
            # one statement with its calls' count, rather than inserted, then updated.
            ended = {**create, **_ending_values(ending), "tool_call_count": len(calls)}
            if run_on_driver(self._connection, _create(self._backend), ended).rows:
                self._save_calls(scope_id, execution_id, calls)
                return
            create = None  # saved before after all (by a save whose reply was lost)
        if create is not None:
            run_on_driver(self._connection, _create(self._backend), create)
        self._save_calls(scope_id, execution_id, calls)
        this = {"in_scope": scope_id, "execution": execution_id}
        if ending is None:
            if calls:
                self._connection.execute(_COUNT_CALLS, this)
            return
        update = _END_AND_COUNT if calls else _END
        if self._connection.execute(update, {**this, **_ending_values(ending)}).rowcount == 0:
            self._ended_otherwise(scope_id, execution_id, ending)

    @writes_in_one_statement
    def save_ended(
        self, scope_id: str, execution_id: UUID, *, create: dict[str, Any], ending: Ending
    ) -> None:
        """``save`` of an execution never saved, that ended with no tool calls to save:
        one INSERT, which needs no transaction around it (PostgreSQL runs it in
        autocommit: one round trip). If the execution was saved after all (a save
        whose reply was lost), the UPDATE that ends it stands alone."""
        ended = {**create, **_ending_values(ending), "tool_call_count": 0}
        if run_on_driver(self._connection, _create(self._backend), ended).rows:
            return
        this = {"in_scope": scope_id, "execution": execution_id}
        if self._connection.execute(_END, {**this, **_ending_values(ending)}).rowcount == 0:
            self._ended_otherwise(scope_id, execution_id, ending)

    def _save_calls(self, scope_id: str, execution_id: UUID, calls: Sequence[CallState]) -> None:
        if not calls:
            return
        rows = [{name: getattr(call, name) for name in _CALL_COLUMNS} for call in calls]
        shared = {"scope_id": scope_id, "execution_id": execution_id}
        _save_calls(self._backend).execute(self._connection, rows, shared)

    def _ended_otherwise(self, scope_id: str, execution_id: UUID, ending: Ending) -> None:
        """The ending changed nothing: fine if it is this ending saved before (a retry),
        else the execution was ended otherwise (or is missing)."""
        status = self._connection.execute(
            sa.select(_EXECUTIONS.c.status).where(
                _EXECUTIONS.c.scope_id == scope_id, _EXECUTIONS.c.id == execution_id
            )
        ).scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"execution {execution_id} not found in scope {scope_id!r}")
        if status != ending.status.value:
            raise InvalidTransitionError(
                f"execution {execution_id} already ended ({status})", status=status
            )
