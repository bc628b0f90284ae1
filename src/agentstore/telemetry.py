"""OpenTelemetry, with the extra ``agentstore[otel]`` (the API package only: the
application configures an SDK, else the API's no-op providers record nothing).

A store emits, to the global tracer and meter providers:

- a span per public call, ``agentstore.<aggregate>.<operation>`` (``agentstore.tasks.
  claim_next``), with ``db.system.name`` and the run, task and execution ids its
  arguments name (``agentstore.run_id``, ``agentstore.task_id``,
  ``agentstore.execution_id``); never a payload, a result or any other argument. A call
  that raises ends in error with ``error.type`` (the exception's type: its message may
  quote data). A call's span begins when its runner takes it in hand: a SQLite writer's
  wait for its face's write lock comes before;
- a span per recorded execution, ``agentstore.executions.recording``, with a child span
  per tool call as the GenAI semantic conventions name tool execution
  (``execute_tool <tool>``);
- a span per task a worker works, ``agentstore.worker.task``: a root, whose children are
  the handler's spans and the calls that heartbeat and end the attempt;
- the worker's metrics: counters of tasks claimed, completed, failed, retried and of
  leases lost, the claims' duration, and (asked for: ``observe_pending_tasks``) a gauge
  of pending tasks per run.

Everything OpenTelemetry is here. Without the API installed nothing of it is imported
(one try, below) and the runners take the path they took before it existed;
``AgentStore.open(url, telemetry=False)`` makes one store emit nothing.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agentstore import validation
from agentstore.errors import AgentStoreError

try:  # the extra agentstore[otel]
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:
    INSTALLED = False
else:
    INSTALLED = True

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
    from opentelemetry.trace import Span

    from agentstore.async_store import AsyncAgentStore
    from agentstore.boundary import TransactionPerCall
    from agentstore.operations import Repository
    from agentstore.orchestrator import TaskRecord
    from agentstore.store import AgentStore

log = logging.getLogger("agentstore.telemetry")

#: The instrumentation scope: the tracer's and the meter's name.
SCOPE = "agentstore"
DB_SYSTEM_NAME = "db.system.name"  # the stable database conventions (was db.system)
ERROR_TYPE = "error.type"
OTHER_ERROR = "_OTHER"  # the conventions' error.type when no exception says which
#: A call's span carries the arguments of these parameters, found by name (ids only).
ID_ATTRIBUTES = {
    "run_id": "agentstore.run_id",
    "task_id": "agentstore.task_id",
    "execution_id": "agentstore.execution_id",
}
RECORDING_SPAN = "agentstore.executions.recording"
TASK_SPAN = "agentstore.worker.task"
TASK_OUTCOME = "agentstore.task.outcome"
#: The worker's counts (``WorkerCounters`` fields) that are metrics: instrument, meaning.
COUNTERS = {
    "claimed": ("agentstore.tasks.claimed", "Tasks claimed by workers"),
    "completed": ("agentstore.tasks.completed", "Tasks completed by workers"),
    "failed": ("agentstore.tasks.failed", "Attempts that failed (raised, or asked for a retry)"),
    "retried": ("agentstore.tasks.retried", "Failed attempts whose task will be tried again"),
    "lost_leases": ("agentstore.tasks.lease_lost", "Attempts that lost their lease (discarded)"),
}
CLAIM_DURATION = "agentstore.tasks.claim.duration"
PENDING_GAUGE = "agentstore.tasks.pending"
#: Seconds: the buckets the database conventions advise for an operation's duration.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class Traced:
    """A piece of work's span, as a context manager: current for the block, ended with
    it, in error if an exception leaves it. This class is the span of a store that emits
    nothing: it does nothing."""

    __slots__ = ()

    def __enter__(self) -> Traced:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def failed(self, cause: BaseException | None = None) -> None:
        """End the span in error: ``cause`` was raised, or (None) the work failed by its
        own account."""


NOTHING = Traced()


class Telemetry:
    """A store's telemetry. This class emits nothing (OpenTelemetry's API is not
    installed, or the store was opened with ``telemetry=False``); ``OpenTelemetry``
    does."""

    #: Whether each call gets a span: the runners skip that path entirely when not.
    traces_calls = False

    def call(
        self,
        repository: type[Repository],
        operation: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Traced:
        """The span of a call of ``operation`` with these arguments."""
        return NOTHING

    def recording(self, execution_id: uuid.UUID) -> Traced:
        """The span of a recorded execution (``Traced.failed``: it ended failed)."""
        return NOTHING

    def tool(self, name: str, call_id: uuid.UUID) -> Traced:
        """The span of a recorded tool call."""
        return NOTHING

    def task(self, task: TaskRecord, worker: str) -> Traced:
        """The span of a worker's attempt at ``task``."""
        return NOTHING

    def counted(self, outcome: str, count: int = 1, cause: BaseException | None = None) -> None:
        """A worker counted ``outcome`` (a ``WorkerCounters`` field) ``count`` times;
        ``cause``: what failed the attempt."""

    def claimed_in(self, operation: str, seconds: float) -> None:
        """A worker's claim (``operation``, ``claim_next`` or ``complete_and_claim``)
        took ``seconds``."""


SILENT = Telemetry()


def telemetry_for(system: str, enabled: bool) -> Telemetry:
    """A store's telemetry on the database ``system`` (``sqlite``, ``postgresql``):
    OpenTelemetry's if its API is installed and ``enabled``, else none."""
    return OpenTelemetry(system) if INSTALLED and enabled else SILENT


class OpenTelemetry(Telemetry):
    """Spans and metrics through OpenTelemetry's API, to its global providers (until the
    application sets some, the API's no-op ones, which record nothing)."""

    traces_calls = True

    def __init__(self, system: str) -> None:
        self._system = system
        self._tracer = trace.get_tracer(SCOPE, _VERSION)
        self._instruments = _instruments()

    def call(
        self,
        repository: type[Repository],
        operation: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Traced:
        shape = _SHAPES.get(operation) or _shape(repository, operation)
        span = self._tracer.start_span(shape.name)
        # Set once the span is known to record: no work for the API's no-op tracer
        # (the sampler decides on the name alone).
        if span.is_recording():
            attributes = {DB_SYSTEM_NAME: self._system}
            for attribute, position, name in shape.ids:
                value = args[position] if 0 <= position < len(args) else kwargs.get(name)
                text = validation.identifier_text(value)
                if text is not None:
                    attributes[attribute] = text
            span.set_attributes(attributes)
        return _Span(span)

    def recording(self, execution_id: uuid.UUID) -> Traced:
        attributes = {ID_ATTRIBUTES["execution_id"]: str(execution_id)}
        return _Span(self._tracer.start_span(RECORDING_SPAN, attributes=attributes))

    def tool(self, name: str, call_id: uuid.UUID) -> Traced:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": str(call_id),
        }
        return _Span(self._tracer.start_span(f"execute_tool {name}", attributes=attributes))

    def task(self, task: TaskRecord, worker: str) -> Traced:
        attributes: dict[str, str | int] = {
            ID_ATTRIBUTES["run_id"]: str(task.run_id),
            ID_ATTRIBUTES["task_id"]: str(task.id),
            "agentstore.task.attempt": task.attempt,
            "agentstore.worker.name": worker,
        }
        # A root: a task claimed by the call that completed the one before is not that
        # one's child, nor are all of a worker's tasks children of a span around it.
        root: Context = otel_context.Context()
        span = self._tracer.start_span(
            TASK_SPAN, context=root, kind=SpanKind.CONSUMER, attributes=attributes
        )
        return _Span(span)

    def counted(self, outcome: str, count: int = 1, cause: BaseException | None = None) -> None:
        counter = self._instruments.counters.get(outcome)
        if counter is not None:
            counter.add(count)
        if outcome == "claimed":  # counted where the claim returned, not in a task's span
            return
        # Counted in the worker's task for the attempt: its span is the current one.
        span = trace.get_current_span()
        span.set_attribute(TASK_OUTCOME, "lease_lost" if outcome == "lost_leases" else outcome)
        if cause is not None or outcome == "lost_leases":
            _failed(span, "lease_lost" if cause is None else _type_name(cause))

    def claimed_in(self, operation: str, seconds: float) -> None:
        self._instruments.claim_duration.record(seconds, {"agentstore.operation": operation})


class _Span(Traced):
    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Token[Context] | None = None

    def __enter__(self) -> Traced:
        # The API's no-op tracer's span is no one's parent: left out of the context.
        if self._span.get_span_context().is_valid:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                self.failed(exc)
        finally:
            if self._token is not None:
                otel_context.detach(self._token)
            self._span.end()

    def failed(self, cause: BaseException | None = None) -> None:
        _failed(self._span, OTHER_ERROR if cause is None else _type_name(cause))


def _failed(span: Span, error_type: str) -> None:
    """Error status, without a description: an exception's message may quote data."""
    span.set_status(Status(StatusCode.ERROR))
    span.set_attribute(ERROR_TYPE, error_type)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


# -- what a call's span is made of, found once per operation ------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    name: str
    #: (attribute, position among the arguments after self or -1 if keyword-only, name)
    ids: tuple[tuple[str, int, str], ...]


_SHAPES: dict[Callable[..., object], _Shape] = {}
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _shape(repository: type[Repository], operation: Callable[..., object]) -> _Shape:
    parameters = list(inspect.signature(operation).parameters.values())[1:]  # after self
    ids = tuple(
        (ID_ATTRIBUTES[p.name], position if p.kind in _POSITIONAL else -1, p.name)
        for position, p in enumerate(parameters)
        if p.name in ID_ATTRIBUTES
    )
    shape = _Shape(f"{SCOPE}.{repository.aggregate}.{operation.__name__}", ids)
    _SHAPES[operation] = shape  # computed twice at worst, by two threads: the same
    return shape


# -- metrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instruments:
    counters: dict[str, Counter]
    claim_duration: Histogram


_INSTRUMENTS: list[_Instruments] = []  # made once per process
_OBSERVED: list[TransactionPerCall] = []  # the stores the pending-tasks gauge reads
_GAUGE: list[object] = []  # the pending-tasks gauge, made once per process
_LOCK = threading.Lock()


def _instruments() -> _Instruments:
    """The worker's instruments, made once per process: an SDK warns of an instrument
    made twice (a ``ProxyMeter``'s, made before the application set its provider,
    reach it once it does)."""
    with _LOCK:
        if not _INSTRUMENTS:
            meter = metrics.get_meter(SCOPE, _VERSION)
            counters = {
                count: meter.create_counter(name, unit="{task}", description=meaning)
                for count, (name, meaning) in COUNTERS.items()
            }
            duration = meter.create_histogram(
                CLAIM_DURATION,
                unit="s",
                description="Duration of a worker's claim call",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            _INSTRUMENTS.append(_Instruments(counters, duration))
        return _INSTRUMENTS[0]


def observe_pending_tasks(store: AgentStore | AsyncAgentStore) -> Callable[[], None]:
    """Report the pending tasks of each run in ``store``'s database as the observable
    gauge ``agentstore.tasks.pending`` (attribute ``agentstore.run_id``; a run with none
    is left out). The database is read only when a metric reader collects, each time in
    one read-only transaction, outside any span. An ``AsyncAgentStore``'s is read through
    a sync engine of its own (a reader collects in its own thread, never on the event
    loop). Returns the function that stops the observing. Raises ``AgentStoreError``
    without OpenTelemetry's API (``pip install 'agentstore[otel]'``)."""
    from agentstore.backends import create_engine, in_schema
    from agentstore.boundary import TransactionPerCall
    from agentstore.store import AgentStore

    if not INSTALLED:
        raise AgentStoreError(
            "observing pending tasks needs OpenTelemetry's API: pip install 'agentstore[otel]'"
        )
    if isinstance(store, AgentStore):
        engine, own = store.engine, False
    else:
        engine, own = in_schema(create_engine(store.engine.url), store.schema), True
    reader = TransactionPerCall(engine, store.backend)
    with _LOCK:
        if not _GAUGE:
            meter = metrics.get_meter(SCOPE, _VERSION)
            _GAUGE.append(
                meter.create_observable_gauge(
                    PENDING_GAUGE,
                    callbacks=[_pending],
                    unit="{task}",
                    description="Pending tasks per run",
                )
            )
        _OBSERVED.append(reader)

    def stop() -> None:
        with _LOCK:
            if reader in _OBSERVED:
                _OBSERVED.remove(reader)
        if own:
            engine.dispose()

    return stop


def _pending(options: CallbackOptions) -> Iterator[Observation]:
    """The gauge's reading: each observed store's counts (a store that cannot be read
    now is left out of this reading, with a warning)."""
    from agentstore.orchestrator.pending import PendingTasks

    with _LOCK:
        readers = list(_OBSERVED)
    for reader in readers:
        try:
            counts = reader.read(PendingTasks, PendingTasks.by_run)
        except AgentStoreError as exc:
            log.warning("pending tasks could not be read: %s", exc)
            continue
        for run_id, count in counts.items():
            yield metrics.Observation(count, {ID_ATTRIBUTES["run_id"]: str(run_id)})


def _version() -> str:
    try:
        return importlib.metadata.version("agentstore")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout
        return ""


_VERSION = _version() if INSTALLED else ""
