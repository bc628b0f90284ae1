"""The recorder: one line for a host to record an execution around its code.

    with store.executions.recording(scope, code, trigger=("mcp", {"session": s})) as rec:
        value = rec.tool("github.issues.list", args, call)   # call(args), recorded
        rec.log("fetched")
        rec.result(value)                                    # or rec.error("…")

    async with store.executions.recording(scope, code) as rec:   # AsyncAgentStore
        value = await rec.tool("github.issues.list", args, call)  # call: sync or async

What it records reaches the database in the background, so that recording costs the
recorded code almost nothing (the durability rule):

- while the block runs, the execution and its tool calls (running, then ended) are
  saved ``flush_after`` after they happen (0.1 s by default), in one transaction per
  flush, by a background thread (sync face) or task (asyncio face); ``rec.flush()``
  saves at once, and ``rec.ask`` saves before it records its question;
- when the block ends, ``recording`` saves what is left and the ending before it
  returns: a returned recording is complete and committed;
- so a process killed mid-execution loses at most what its block recorded since the
  last flush (its execution stays ``running``, as any execution cut short).

The recorded code always wins: a storage fault inside the recorder is logged and counted
(``rec.faults``), never raised into the block, and never silently lost. Nothing it opens
is stranded: a result, argument or payload that is not JSON is stored as a faithful text
form (``{"not_json": repr(value), "type": "module.Class"}``, counted as a fault), so the
execution and its tool calls end in a terminal status. It names the execution and each
tool call itself, so a save the database did not answer is tried again (twice, shortly)
without risk of a duplicate; a save the database refuses is tried once more without its
tool calls (counted as lost), so that the execution still ends.

With OpenTelemetry (``agentstore.telemetry``) the execution is a span, current while
the block runs, and each tool call a child span of it (``execute_tool <tool>``).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import threading
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from agentstore import validation
from agentstore.errors import StoreUnavailableError, ValidationError
from agentstore.executions.flushing import BACKGROUND
from agentstore.executions.progress import CallState, Ending, RecordingProgress
from agentstore.executions.repository import Trigger, _scope, _trigger
from agentstore.models import Execution
from agentstore.models.base import utcnow
from agentstore.statuses import ExecutionStatus, OnExpiry, ToolCallStatus
from agentstore.telemetry import NOTHING, SILENT, Telemetry, Traced
from agentstore.types import SerializedJSON, dumps_json, uuid7

if TYPE_CHECKING:
    from agentstore.async_faces import AsyncExecutions
    from agentstore.boundary import AsyncCalls, Calls
    from agentstore.executions.records import InteractionRecord
    from agentstore.faces import Executions

T = TypeVar("T")
log = logging.getLogger("agentstore.recorder")
#: Seconds between the tries of a storage call the database did not answer.
RETRY_PAUSES = (0.05, 0.2)
#: How long after a change a running recording saves it, by default.
FLUSH_AFTER = timedelta(milliseconds=100)
#: The calls safe to make again after an unknown outcome: what the recorder names.
_REPEATABLE = frozenset({"save"})


def _worth_retrying(action: str, exc: Exception) -> bool:
    """A retryable failure of a call that is safe to repeat (a retry of one that had
    committed changes nothing)."""
    return action in _REPEATABLE and isinstance(exc, StoreUnavailableError) and exc.retryable


@dataclasses.dataclass(frozen=True, slots=True)
class _Save:
    """One flush: what ``RecordingProgress.save`` writes."""

    create: dict[str, Any] | None
    calls: list[CallState]
    ending: Ending | None

    def without_calls(self) -> _Save:
        return dataclasses.replace(self, calls=[])

    def operation(self) -> tuple[Callable[..., None], dict[str, Any]]:
        """The operation that writes this save, with its keyword arguments: one
        statement for a short block that ended with nothing else to save."""
        if self.create is not None and self.ending is not None and not self.calls:
            return RecordingProgress.save_ended, {"create": self.create, "ending": self.ending}
        return RecordingProgress.save, {
            "create": self.create,
            "calls": self.calls,
            "ending": self.ending,
        }


class _Recording(ABC):
    """What a recorder keeps, whichever face it records through: the execution and its
    tool calls not saved yet."""

    def __init__(
        self,
        scope_id: str,
        code: str,
        trigger: Trigger,
        telemetry: Telemetry = SILENT,
        flush_after: timedelta = FLUSH_AFTER,
    ) -> None:
        self.scope_id = scope_id
        self._code = code
        self._trigger = trigger
        self._flush_after = validation.delay(flush_after, "flush_after")
        #: The execution's id (named here, so that saving it again is safe); None if
        #: it could not be recorded at all (a fault).
        self.execution_id: uuid.UUID | None = None
        self._columns: dict[str, Any] | None = None  # the execution's, until first saved
        self._started_at = utcnow()
        self._unsaved: dict[uuid.UUID, CallState] = {}
        self._state = threading.Lock()  # the tool calls may end on other threads
        self.faults = 0  # storage calls that failed
        self.fault_messages: list[str] = []
        self._logs: list[str] = []
        self._result: Any = None
        self._error: str | None = None
        self._telemetry = telemetry
        self._span: Traced = NOTHING
        self._context = contextvars.copy_context()
        self._closed = False

    def log(self, line: str) -> None:
        """Keep a log line; the lines are stored when the execution ends."""
        self._logs.append(str(line))

    def result(self, value: Any) -> None:
        """The execution's result (stored when it ends as completed)."""
        self._result = value

    def error(self, text: str) -> None:
        """End the execution as failed with ``text`` (the block itself goes on)."""
        self._error = text

    def _begin(self) -> None:
        """Name the execution and check its columns (a fault if they are refused: then
        nothing of it is recorded); begin its span."""
        id = uuid7()
        self._started_at = utcnow()
        self._begin_span(id)
        try:
            kind, meta = _trigger(self._trigger)
            self._columns = {
                "id": id,
                "scope_id": _scope(self.scope_id),
                "code": validation.text(self._code, Execution.code, required=False),
                "status": ExecutionStatus.RUNNING.value,
                "trigger_kind": kind,
                "trigger_meta": meta,
                "started_at": self._started_at,
            }
        except ValidationError as exc:
            self._fault("create", time.monotonic(), exc)
            return
        self.execution_id = id

    def _ending(self, exc: BaseException | None) -> Ending | None:
        """How the execution ended (None if it is not recorded)."""
        if exc is not None:
            self._error = "".join(traceback.format_exception_only(exc)).strip()
        if self.execution_id is None:
            return None
        status = ExecutionStatus.FAILED if self._error is not None else ExecutionStatus.COMPLETED
        result = self._storable(self._result, "result")
        started_at = self._started_at
        try:
            return Ending.of(status, result, self._error, self._logs, started_at)
        except ValidationError as exc:  # an error text too long: ended without it
            self._fault("finish", time.monotonic(), exc)
            return Ending.of(status, result, None, self._logs, started_at)

    def _started(self, call_id: uuid.UUID, tool_path: str, args: Any) -> CallState | None:
        """A tool call starting, kept to be saved (None if it is refused: a fault)."""
        if self.execution_id is None:
            return None
        try:
            call = CallState.started(call_id, tool_path, self._storable(args, "args"))
        except ValidationError as exc:
            self._fault("record_tool_call", time.monotonic(), exc)
            return None
        self._keep(call)
        return call

    def _ended(
        self,
        call: CallState | None,
        status: ToolCallStatus,
        value: Any = None,
        error_text: str | None = None,
    ) -> None:
        if call is None:
            return
        result = None if value is None else self._storable(value, "tool result")
        try:
            ended = call.ended(status, result=result, error_text=error_text)
        except ValidationError as exc:
            self._fault("finish_tool_call", time.monotonic(), exc)
            ended = call.ended(status)
        self._keep(ended)

    def _keep(self, call: CallState) -> None:
        with self._state:
            self._unsaved[call.id] = call
        if not self._closed:  # else the exit saves it, or has (a call ending too late)
            self._schedule()

    @abstractmethod
    def _schedule(self) -> None:
        """Have the face save this recording after ``flush_after``."""

    def _pending(self, ending: Ending | None) -> _Save | None:
        """What a save would write now, if anything."""
        with self._state:
            calls = list(self._unsaved.values())
        if self.execution_id is None or (self._columns is None and not calls and ending is None):
            return None
        return _Save(self._columns, calls, ending)

    def _saved(self, save: _Save) -> None:
        """Forget what ``save`` wrote (a call that changed since stays to be saved)."""
        self._columns = None
        with self._state:
            for call in save.calls:
                if self._unsaved.get(call.id) is call:
                    del self._unsaved[call.id]

    def _key(self) -> tuple[str, uuid.UUID]:
        """The scope and id a save writes under."""
        assert self.execution_id is not None  # a recording not recorded saves nothing
        return _scope(self.scope_id), self.execution_id

    def _lost(self, save: _Save) -> None:
        """The tool calls of ``save`` could not be saved (a fault counted already):
        forget them, so that the next save does not fail on them again."""
        message = f"{len(save.calls)} tool calls lost: saved the execution without them"
        self.fault_messages.append(message)
        log.warning("recording execution %s: %s", self.execution_id, message)
        with self._state:
            for call in save.calls:
                self._unsaved.pop(call.id, None)

    def _begin_span(self, id: uuid.UUID) -> None:
        """Begin the execution's span: current until ``_end_span``, so that the store's
        calls and the tool calls of the recording are its children."""
        self._span = self._telemetry.recording(id)
        self._span.__enter__()
        # Background saves run in this context: their spans are the execution's children.
        self._context = contextvars.copy_context()

    def _end_span(self, exc: BaseException | None) -> None:
        if self._error is not None:
            self._span.failed(exc)
        self._span.__exit__(None, None, None)

    def _storable(self, value: Any, what: str) -> SerializedJSON | None:
        """``value`` as JSON text (serialised once: the store takes it as it is), else its
        faithful text form (a fault, counted)."""
        if value is None:
            return None
        try:
            return SerializedJSON(dumps_json(value))
        except ValidationError as exc:
            self.faults += 1
            message = f"{what} is not JSON ({exc}); stored as text"
            self.fault_messages.append(message)
            log.warning("recording execution %s: %s", self.execution_id, message)
            kind = type(value)
            text_form = {"not_json": repr(value), "type": f"{kind.__module__}.{kind.__qualname__}"}
            return SerializedJSON(dumps_json(text_form))

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
        calls: Calls,
        scope_id: str,
        code: str,
        trigger: Trigger,
        flush_after: timedelta = FLUSH_AFTER,
    ) -> None:
        super().__init__(scope_id, code, trigger, calls.telemetry, flush_after)
        self._executions = executions
        self._calls = calls
        self._flushing = threading.Lock()  # one save at a time, in the order made

    def __enter__(self) -> Recorder:
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ending = self._ending(exc)
        self._closed = True
        BACKGROUND.cancel(self)
        self._save(ending)
        self._end_span(exc)

    def flush(self) -> None:
        """Save at once what the block recorded so far (the background saves it within
        ``flush_after`` anyway). Never raises: a failure is a fault, counted."""
        self._save(None)

    def tool(self, tool_path: str, args: Any, call: Callable[[Any], T]) -> T:
        """Run ``call(args)`` as the tool call ``tool_path``, recording it running, then
        completed with its result or failed with its error (re-raised), with duration."""
        call_id = uuid7()  # named here, so that saving it again is safe
        with self._telemetry.tool(tool_path, call_id):
            started = self._started(call_id, tool_path, args)
            try:
                value = call(args)
            except Exception as exc:
                self._ended(started, ToolCallStatus.FAILED, error_text=repr(exc))
                raise
            self._ended(started, ToolCallStatus.COMPLETED, value)
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
        ``request_interaction``. Saves the recording first. None if it could not be
        recorded."""
        execution_id = self.execution_id
        if execution_id is None:
            return None
        self._save(None)  # a person must find the execution the question belongs to
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

    def _schedule(self) -> None:
        BACKGROUND.schedule(self, self._flush_after.total_seconds())

    def flush_in_background(self) -> None:
        """A background save: a failure is left for the next save (the exit's at the
        latest) to try again, uncounted."""
        self._context.run(self._save_in_background)

    def _save_in_background(self) -> None:
        with self._flushing:
            save = self._pending(None)
            if save is None:
                return
            try:
                self._write(save)
            except Exception as exc:
                log.debug("recording %s: background save failed: %r", self.execution_id, exc)
                return
            self._saved(save)

    def _save(self, ending: Ending | None) -> None:
        with self._flushing:
            save = self._pending(ending)
            if save is None:
                return
            if self._store("save", lambda: self._write(save)):
                self._saved(save)
                return
            bare = save.without_calls()  # refused with its tool calls: save the rest
            if not save.calls:
                return
            if self._store("save", lambda: self._write(bare)):
                self._saved(bare)
                self._lost(save)

    def _write(self, save: _Save) -> bool:
        operation, arguments = save.operation()
        self._calls.write(RecordingProgress, operation, *self._key(), **arguments)
        return True

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
        calls: AsyncCalls,
        scope_id: str,
        code: str,
        trigger: Trigger,
        flush_after: timedelta = FLUSH_AFTER,
    ) -> None:
        super().__init__(scope_id, code, trigger, calls.telemetry, flush_after)
        self._executions = executions
        self._calls = calls
        self._flushing = asyncio.Lock()  # one save at a time, in the order made
        self._timer: asyncio.TimerHandle | None = None
        self._background: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncRecorder:
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ending = self._ending(exc)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._save(ending)
        self._end_span(exc)

    async def flush(self) -> None:
        """As ``Recorder.flush``."""
        await self._save(None)

    async def tool(self, tool_path: str, args: Any, call: Callable[[Any], T | Awaitable[T]]) -> T:
        """Run ``call(args)`` (a function or a coroutine function) as the tool call
        ``tool_path``, recording it as ``Recorder.tool`` does."""
        call_id = uuid7()  # named here, so that saving it again is safe
        with self._telemetry.tool(tool_path, call_id):
            started = self._started(call_id, tool_path, args)
            try:
                value = call(args)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                self._ended(started, ToolCallStatus.FAILED, error_text=repr(exc))
                raise
            self._ended(started, ToolCallStatus.COMPLETED, value)
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
        await self._save(None)
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

    def _schedule(self) -> None:
        if self._timer is None and self._background is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(
                self._flush_after.total_seconds(), self._in_background, context=self._context
            )

    def _in_background(self) -> None:
        self._timer = None
        self._background = asyncio.ensure_future(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        """As ``Recorder.flush_in_background``; then again if more changed meanwhile."""
        try:
            async with self._flushing:
                save = self._pending(None)
                if save is None:
                    return
                try:
                    await self._write(save)
                except Exception as exc:
                    log.debug("recording %s: background save failed: %r", self.execution_id, exc)
                    return
                self._saved(save)
        finally:
            self._background = None
        if self._unsaved and not self._closed:
            self._schedule()

    async def _save(self, ending: Ending | None) -> None:
        async with self._flushing:
            save = self._pending(ending)
            if save is None:
                return
            if await self._store("save", lambda: self._write(save)):
                self._saved(save)
                return
            bare = save.without_calls()  # refused with its tool calls: save the rest
            if not save.calls:
                return
            if await self._store("save", lambda: self._write(bare)):
                self._saved(bare)
                self._lost(save)

    async def _write(self, save: _Save) -> bool:
        operation, arguments = save.operation()
        await self._calls.write(RecordingProgress, operation, *self._key(), **arguments)
        return True

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
