"""The recorder: one line for a host to record an execution around its code.

    with store.executions.recording(scope, code, trigger=("mcp", {"session": s})) as rec:
        value = rec.tool("github.issues.list", args, call)   # call(args), recorded
        rec.log("fetched")
        rec.result(value)                                    # or rec.error("…")

    async with store.executions.recording(scope, code) as rec:   # AsyncAgentStore
        value = await rec.tool("github.issues.list", args, call)  # call: sync or async

The recorded code always wins: a storage fault inside the recorder is logged and counted
(``rec.faults``), never raised into the block, and never silently lost. Nothing it opens
is stranded: a result, argument or payload that is not JSON is stored as a faithful text
form (``{"not_json": repr(value), "type": "module.Class"}``, counted as a fault), so the
execution and its tool calls end in a terminal status. It names the execution and each
tool call itself, so a call the database did not answer is tried again (twice, shortly)
without risk of a duplicate.

With OpenTelemetry (``agentstore.telemetry``) the execution is a span, current while
the block runs, and each tool call a child span of it (``execute_tool <tool>``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from agentstore.errors import StoreUnavailableError, ValidationError
from agentstore.statuses import ExecutionStatus, OnExpiry, ToolCallStatus
from agentstore.telemetry import NOTHING, SILENT, Telemetry, Traced
from agentstore.types import SerializedJSON, dumps_json, uuid7

if TYPE_CHECKING:
    from agentstore.async_faces import AsyncExecutions
    from agentstore.executions.records import InteractionRecord
    from agentstore.executions.repository import Trigger
    from agentstore.faces import Executions

T = TypeVar("T")
log = logging.getLogger("agentstore.recorder")
#: Seconds between the tries of a storage call the database did not answer.
RETRY_PAUSES = (0.05, 0.2)
#: The calls safe to make again after an unknown outcome: named by the recorder, or ends.
_REPEATABLE = frozenset({"create", "record_tool_call", "finish", "finish_tool_call"})


def _worth_retrying(action: str, exc: Exception) -> bool:
    """A retryable failure of a call that is safe to repeat (a retry of one that had
    committed returns the record)."""
    return action in _REPEATABLE and isinstance(exc, StoreUnavailableError) and exc.retryable


class _Recording:
    """What a recorder keeps, whichever face it records through."""

    def __init__(
        self, scope_id: str, code: str, trigger: Trigger, telemetry: Telemetry = SILENT
    ) -> None:
        self.scope_id = scope_id
        self._code = code
        self._trigger = trigger
        self.execution_id: uuid.UUID | None = None
        self._id = uuid7()  # named here, so that creating it again is safe
        self.faults = 0  # storage calls that failed
        self.fault_messages: list[str] = []
        self._logs: list[str] = []
        self._result: Any = None
        self._error: str | None = None
        self._telemetry = telemetry
        self._span: Traced = NOTHING

    def log(self, line: str) -> None:
        """Keep a log line; the lines are stored when the execution ends."""
        self._logs.append(str(line))

    def result(self, value: Any) -> None:
        """The execution's result (stored when it ends as completed)."""
        self._result = value

    def error(self, text: str) -> None:
        """End the execution as failed with ``text`` (the block itself goes on)."""
        self._error = text

    def _ending(self, exc: BaseException | None) -> dict[str, Any]:
        """The arguments of the ``finish`` that ends the execution."""
        if exc is not None:
            self._error = "".join(traceback.format_exception_only(exc)).strip()
        failed = self._error is not None
        return {
            "status": ExecutionStatus.FAILED if failed else ExecutionStatus.COMPLETED,
            "result": self._storable(self._result, "result"),
            "error_text": self._error,
            "logs": self._logs,
        }

    def _begin_span(self) -> None:
        """Begin the execution's span: current until ``_end_span``, so that the store's
        calls and the tool calls of the recording are its children."""
        self._span = self._telemetry.recording(self._id)
        self._span.__enter__()

    def _end_span(self, ending: dict[str, Any], exc: BaseException | None) -> None:
        if ending["status"] is ExecutionStatus.FAILED:
            self._span.failed(exc)
        self._span.__exit__(None, None, None)

    def _storable(self, value: Any, what: str) -> Any:
        """``value`` as JSON text (serialised once: the store takes it as it is), else its
        faithful text form (a fault, counted)."""
        try:
            return SerializedJSON(dumps_json(value))
        except ValidationError as exc:
            self.faults += 1
            message = f"{what} is not JSON ({exc}); stored as text"
            self.fault_messages.append(message)
            log.warning("recording execution %s: %s", self.execution_id, message)
            kind = type(value)
            return {"not_json": repr(value), "type": f"{kind.__module__}.{kind.__qualname__}"}

    def _fault(self, action: str, started: float, exc: Exception) -> None:
        self.faults += 1
        message = f"{action} failed after {time.monotonic() - started:.3f}s: {exc!r}"
        self.fault_messages.append(message)
        log.warning("recording execution %s: %s", self.execution_id, message)


class Recorder(_Recording):
    """Records one execution through a sync face; see the module docstring."""

    def __init__(
        self,
        executions: Executions,
        scope_id: str,
        code: str,
        trigger: Trigger,
        telemetry: Telemetry = SILENT,
    ) -> None:
        super().__init__(scope_id, code, trigger, telemetry)
        self._executions = executions

    def __enter__(self) -> Recorder:
        self._begin_span()
        created = self._store(
            "create",
            lambda: self._executions.create(
                self.scope_id, self._code, trigger=self._trigger, id=self._id
            ),
        )
        self.execution_id = None if created is None else created.id
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ending = self._ending(exc)
        execution_id = self.execution_id
        if execution_id is not None:
            self._store(
                "finish", lambda: self._executions.finish(self.scope_id, execution_id, **ending)
            )
        self._end_span(ending, exc)

    def tool(self, tool_path: str, args: Any, call: Callable[[Any], T]) -> T:
        """Run ``call(args)`` as the tool call ``tool_path``, recording it running, then
        completed with its result or failed with its error (re-raised), with duration."""
        call_id = uuid7()  # named here, so that recording it again is safe
        with self._telemetry.tool(tool_path, call_id):
            return self._tool(tool_path, args, call, call_id)

    def _tool(self, tool_path: str, args: Any, call: Callable[[Any], T], call_id: uuid.UUID) -> T:
        execution_id = self.execution_id
        started = None
        if execution_id is not None:
            started = self._store(
                "record_tool_call",
                lambda: self._executions.record_tool_call(
                    self.scope_id,
                    execution_id,
                    tool_path,
                    args=self._storable(args, "args"),
                    id=call_id,
                ),
            )
        try:
            value = call(args)
        except Exception as exc:
            if started is not None:
                failure = repr(exc)
                self._store(
                    "finish_tool_call",
                    lambda: self._executions.finish_tool_call(
                        self.scope_id, started.id, ToolCallStatus.FAILED, error_text=failure
                    ),
                )
            raise
        if started is not None:
            self._store(
                "finish_tool_call",
                lambda: self._executions.finish_tool_call(
                    self.scope_id,
                    started.id,
                    ToolCallStatus.COMPLETED,
                    result=self._storable(value, "tool result"),
                ),
            )
        return value

    def ask(
        self,
        kind: str,
        *,
        purpose: str | None = None,
        payload: Any = None,
        timeout: timedelta | None = None,
        on_expiry: str = OnExpiry.CONTINUE,
    ) -> InteractionRecord | None:
        """Record that the execution pauses for a person; the host resumes it later with
        ``store.executions.resolve_interaction``. ``timeout``: unanswered that long
        (on the database's clock), the question expires and the execution goes on
        (``on_expiry="continue"``) or ends failed (``"fail"``); see
        ``request_interaction``. None if it could not be recorded."""
        execution_id = self.execution_id
        if execution_id is None:
            return None
        return self._store(
            "request_interaction",
            lambda: self._executions.request_interaction(
                self.scope_id,
                execution_id,
                kind,
                purpose=purpose,
                payload=self._storable(payload, "payload"),
                expires_in=timeout,
                on_expiry=on_expiry,
            ),
        )

    def _store(self, action: str, call: Callable[[], T]) -> T | None:
        started = time.monotonic()
        tries = 0
        while True:
            try:
                return call()
            except Exception as exc:  # the recorded code must never fail for our sake
                if tries == len(RETRY_PAUSES) or not _worth_retrying(action, exc):
                    self._fault(action, started, exc)
                    return None
            time.sleep(RETRY_PAUSES[tries])
            tries += 1


class AsyncRecorder(_Recording):
    """Records one execution through the asyncio face; see the module docstring."""

    def __init__(
        self,
        executions: AsyncExecutions,
        scope_id: str,
        code: str,
        trigger: Trigger,
        telemetry: Telemetry = SILENT,
    ) -> None:
        super().__init__(scope_id, code, trigger, telemetry)
        self._executions = executions

    async def __aenter__(self) -> AsyncRecorder:
        self._begin_span()
        created = await self._store(
            "create",
            lambda: self._executions.create(
                self.scope_id, self._code, trigger=self._trigger, id=self._id
            ),
        )
        self.execution_id = None if created is None else created.id
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ending = self._ending(exc)
        execution_id = self.execution_id
        if execution_id is not None:
            await self._store(
                "finish", lambda: self._executions.finish(self.scope_id, execution_id, **ending)
            )
        self._end_span(ending, exc)

    async def tool(self, tool_path: str, args: Any, call: Callable[[Any], T | Awaitable[T]]) -> T:
        """Run ``call(args)`` (a function or a coroutine function) as the tool call
        ``tool_path``, recording it as ``Recorder.tool`` does."""
        call_id = uuid7()  # named here, so that recording it again is safe
        with self._telemetry.tool(tool_path, call_id):
            return await self._tool(tool_path, args, call, call_id)

    async def _tool(
        self, tool_path: str, args: Any, call: Callable[[Any], T | Awaitable[T]], call_id: uuid.UUID
    ) -> T:
        execution_id = self.execution_id
        started = None
        if execution_id is not None:
            started = await self._store(
                "record_tool_call",
                lambda: self._executions.record_tool_call(
                    self.scope_id,
                    execution_id,
                    tool_path,
                    args=self._storable(args, "args"),
                    id=call_id,
                ),
            )
        try:
            value = call(args)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            if started is not None:
                failure = repr(exc)
                await self._store(
                    "finish_tool_call",
                    lambda: self._executions.finish_tool_call(
                        self.scope_id, started.id, ToolCallStatus.FAILED, error_text=failure
                    ),
                )
            raise
        if started is not None:
            await self._store(
                "finish_tool_call",
                lambda: self._executions.finish_tool_call(
                    self.scope_id,
                    started.id,
                    ToolCallStatus.COMPLETED,
                    result=self._storable(value, "tool result"),
                ),
            )
        return value

    async def ask(
        self,
        kind: str,
        *,
        purpose: str | None = None,
        payload: Any = None,
        timeout: timedelta | None = None,
        on_expiry: str = OnExpiry.CONTINUE,
    ) -> InteractionRecord | None:
        """As ``Recorder.ask``."""
        execution_id = self.execution_id
        if execution_id is None:
            return None
        return await self._store(
            "request_interaction",
            lambda: self._executions.request_interaction(
                self.scope_id,
                execution_id,
                kind,
                purpose=purpose,
                payload=self._storable(payload, "payload"),
                expires_in=timeout,
                on_expiry=on_expiry,
            ),
        )

    async def _store(self, action: str, call: Callable[[], Awaitable[T]]) -> T | None:
        started = time.monotonic()
        tries = 0
        while True:
            try:
                return await call()
            except Exception as exc:  # the recorded code must never fail for our sake
                if tries == len(RETRY_PAUSES) or not _worth_retrying(action, exc):
                    self._fault(action, started, exc)
                    return None
            await asyncio.sleep(RETRY_PAUSES[tries])
            tries += 1
