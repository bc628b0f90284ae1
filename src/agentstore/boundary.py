"""Where public calls cross into the database.

A face (``AgentStore``, ``AsyncAgentStore``, a unit from ``store.transaction()``, a
host's connection from ``store.on()``) hands each call to a runner here, which decides
the transaction around the operation and translates driver errors into
``agentstore.errors``. The operations themselves (the repositories) only ever see a
``Connection``. The rule, the same in every face:

- outside a unit, each call is its own transaction: committed when it returns, rolled
  back when it raises;
- inside a unit (or on a host's connection), each call runs in a savepoint: a call that
  raises is undone alone, the transaction stays usable (on PostgreSQL a failed statement
  never aborts it), and the unit goes on. The unit commits everything that reported
  success, or raises.

Each call is also where its span begins and ends (``agentstore.telemetry``), the same
for every face: ``TransactionPerCall.run`` and ``in_savepoint`` are the two paths every
call takes. A store that emits nothing takes them as if spans did not exist.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.util import greenlet_spawn

from agentstore.backends import Backend
from agentstore.backends.base import ONE_STATEMENT
from agentstore.call_threads import CallThreads
from agentstore.errors import AgentStoreError, StoreUnavailableError, ValidationError
from agentstore.operations import Repository, WriteNeeded, in_one_statement
from agentstore.telemetry import SILENT, Telemetry

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Repo = TypeVar("Repo", bound=Repository)
P = ParamSpec("P")
T = TypeVar("T")
Operation = Callable[Concatenate[Repo, P], T]

# The units open in this context: (store key, owner) pairs. A context variable, so that
# it follows an asyncio task or a thread, never leaks to another one (see ``_owner``).
_OPEN_UNITS: ContextVar[tuple[tuple[int, Hashable], ...]] = ContextVar(
    "agentstore_open_units", default=()
)


@contextmanager
def translated(backend: Backend) -> Iterator[None]:
    """Re-raise database errors as ``agentstore.errors`` (for the paths that are not hot)."""
    try:
        yield
    except AgentStoreError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise backend.translate(exc) from exc


def in_savepoint(
    connection: Connection,
    backend: Backend,
    telemetry: Telemetry,
    repository: type[Repo],
    operation: Operation[Repo, P, T],
    args: Any,
    kwargs: Any,
) -> T:
    """Run one operation in a savepoint of the transaction ``connection`` is in (or
    begins: SQLAlchemy's autobegin), so that if it raises it is undone alone; in a span
    of its own when ``telemetry`` traces calls."""
    if not telemetry.traces_calls:
        return _in_savepoint(connection, backend, repository, operation, args, kwargs)
    with telemetry.call(repository, operation, args, kwargs):
        return _in_savepoint(connection, backend, repository, operation, args, kwargs)


def _in_savepoint(
    connection: Connection,
    backend: Backend,
    repository: type[Repo],
    operation: Operation[Repo, P, T],
    args: Any,
    kwargs: Any,
) -> T:
    try:
        with connection.begin_nested():
            return operation(repository(connection, backend), *args, **kwargs)
    except AgentStoreError:
        raise
    except sa.exc.SQLAlchemyError as exc:  # here, so that the span sees what is raised
        raise backend.translate(exc) from exc


# -- the unit guard ------------------------------------------------------------------


def _owner() -> Hashable:
    """Who is running: the asyncio task, else the thread. A task created inside a unit
    copies its context (and so the open units) but is another owner."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        task = None
    return task if task is not None else threading.get_ident()


@contextmanager
def unit_open(key: int) -> Iterator[None]:
    """Note that the caller holds a unit of the store ``key`` until the block ends."""
    token = _OPEN_UNITS.set((*_OPEN_UNITS.get(), (key, _owner())))
    try:
        yield
    finally:
        _OPEN_UNITS.reset(token)


def refuse_beside_own_unit(key: int, name: str) -> None:
    """A write through the store itself (or a second unit), from a task or thread that
    holds one of that store's units, would wait for the unit's own locks (SQLite's write
    lock, PostgreSQL's row locks) while the unit waits for it: refuse it instead of
    hanging. Reads never wait for a writer, so they are let through."""
    units = _OPEN_UNITS.get()
    if units and (key, _owner()) in units:
        raise ValidationError(
            f"{name} was called on the store by a task or thread that holds one of its "
            "units, and would wait for the unit's own locks: call it through the unit "
            "(the tx of `with store.transaction() as tx`), or after the block"
        )


# -- sync ----------------------------------------------------------------------------


class Calls(ABC):
    """How a sync face runs an operation (the generated faces call ``read``/``write``)."""

    #: What the store emits (see ``agentstore.telemetry``).
    telemetry: Telemetry

    @abstractmethod
    def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run an operation that only reads."""

    @abstractmethod
    def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run an operation that writes."""


class TransactionPerCall(Calls):
    """Each call: a pooled connection from ``engine`` and a transaction of its own
    (read-only for reads). On a database with one writer at a time, the face's writers
    take turns on a lock before they take a connection (units do not: a unit that waited
    on it for a task it is waiting for would hang, where the database's busy timeout
    ends such a wait with an error)."""

    def __init__(self, engine: Engine, backend: Backend, telemetry: Telemetry = SILENT) -> None:
        self.engine = engine
        self.backend = backend
        self.telemetry = telemetry
        self.key = id(self)
        self._writers: AbstractContextManager[object] = (
            threading.Lock() if backend.one_writer_at_a_time else nullcontext()
        )
        #: Called with an operation's name after each write it committed (see
        #: ``AgentStore.watch_writes``).
        self.watchers: list[Callable[[str], object]] = []

    def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            return self.run(True, repository, operation, args, kwargs)
        except WriteNeeded:
            # The read met a row it must write down first (see WriteNeeded): again, as a
            # write. From a thread holding a unit this is refused as any write is.
            return self.write(repository, operation, *args, **kwargs)

    def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        refuse_beside_own_unit(self.key, operation.__qualname__)
        with self._writers:
            result = self.run(False, repository, operation, args, kwargs)
        for watcher in self.watchers:
            watcher(operation.__name__)
        return result

    def run(
        self,
        read_only: bool,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        args: Any,
        kwargs: Any,
    ) -> T:
        """One operation in a transaction of its own (read-only for a read), or in
        autocommit where it is one statement (see ``writes_in_one_statement``); in a
        span of its own when the store traces calls. A failure says whether the write
        may have committed (``maybe_committed``)."""
        if not self.telemetry.traces_calls:
            return self._run(read_only, repository, operation, args, kwargs)
        with self.telemetry.call(repository, operation, args, kwargs):
            return self._run(read_only, repository, operation, args, kwargs)

    def _run(
        self,
        read_only: bool,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        args: Any,
        kwargs: Any,
    ) -> T:
        committing = False  # from here on, a lost connection leaves the outcome unknown
        try:
            with self.engine.connect() as connection:
                if read_only:
                    connection.execution_options(**self.backend.read_only_options)
                elif self.backend.data_modifying_ctes and in_one_statement(operation):
                    connection.execution_options(**{ONE_STATEMENT: True})
                    committing = True  # each statement commits as it runs
                    return operation(repository(connection, self.backend), *args, **kwargs)
                with connection.begin():
                    bound = repository(connection, self.backend, read_only=read_only)
                    result = operation(bound, *args, **kwargs)
                    committing = not read_only
                return result
        except AgentStoreError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            if committing:
                raise self.backend.translate_committing(exc) from exc
            raise self.backend.translate(exc) from exc

    @contextmanager
    def unit(self) -> Iterator[Connection]:
        """A connection in a transaction of its own, committed when the block ends
        normally (unless the database has already failed it: then it raises) and rolled
        back when the block raises."""
        refuse_beside_own_unit(self.key, "transaction()")
        with translated(self.backend):
            connection = self.engine.connect()
        try:
            with translated(self.backend):
                connection.begin()
            with unit_open(self.key):
                yield connection
            commit(connection, self.backend)
        finally:
            connection.close()  # rolls back whatever was not committed


class SavepointPerCall(Calls):
    """Each call: a savepoint on a connection someone else owns (a unit's, a host's)."""

    def __init__(
        self, connection: Connection, backend: Backend, telemetry: Telemetry = SILENT
    ) -> None:
        self.connection = connection
        self.backend = backend
        self.telemetry = telemetry
        self._lock = threading.Lock()  # a Connection is not for two threads at once

    def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return self.write(repository, operation, *args, **kwargs)

    def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            with self._lock:
                return in_savepoint(
                    self.connection,
                    self.backend,
                    self.telemetry,
                    repository,
                    operation,
                    args,
                    kwargs,
                )
        except AgentStoreError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self.backend.translate(exc) from exc


def commit(connection: Connection, backend: Backend) -> None:
    """Commit a unit, refusing to when the database has already failed its transaction
    (a COMMIT would then roll it back and report nothing)."""
    with translated(backend):
        aborted = backend.transaction_aborted(connection)
    if aborted:
        raise StoreUnavailableError(
            "the transaction was failed by the database before it ended; "
            "nothing of it was committed"
        )
    try:
        connection.commit()
    except sa.exc.SQLAlchemyError as exc:
        raise backend.translate_committing(exc) from exc


# -- asyncio -------------------------------------------------------------------------

#: The threads an asyncio face runs its calls in (``AsyncTransactionPerCall``): fewer
#: than its engine's pool keeps connections (SQLAlchemy's default, 5), so that no call
#: waits for one. Units have a pool of their own, the async engine's.
CALL_THREADS = 4


class AsyncCalls(ABC):
    """How an asyncio face runs an operation: the same operations as the sync faces, run
    through SQLAlchemy's greenlet bridge (a greenlet per call, or ``run_sync`` on a unit's
    ``AsyncConnection``) with the native async driver underneath."""

    #: What the store emits (see ``agentstore.telemetry``).
    telemetry: Telemetry

    @abstractmethod
    async def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run an operation that only reads."""

    @abstractmethod
    async def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run an operation that writes."""


class AsyncTransactionPerCall(AsyncCalls):
    """Each call: a pooled connection and a transaction of its own.

    The sync runner does it all, in one of two ways:

    - on the async engine's ``sync_engine``, in one greenlet (as SQLAlchemy's
      ``AsyncSession`` runs a sync ``Session``): the async driver is awaited underneath
      wherever the sync code waits for the database;
    - given ``threaded``, a sync engine on the same database (``threaded_twin``), on
      that engine in one of the runner's own threads: one hop to a thread per call,
      where aiosqlite would hop to its thread for every cursor, execute, fetch and close
      (``Backend.async_calls_in_threads``). A call the caller stops awaiting (cancelled)
      still ends in its thread, committed or rolled back, as a lost reply does.

    Writers take turns on an ``asyncio.Lock`` where the sync face takes a thread lock.
    Units (``unit``) stay on the async engine either way."""

    def __init__(
        self,
        engine: AsyncEngine,
        backend: Backend,
        telemetry: Telemetry = SILENT,
        threaded: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.telemetry = telemetry
        self.key = id(self)
        self._calls = TransactionPerCall(threaded or engine.sync_engine, backend, telemetry)
        self._threads = None if threaded is None else CallThreads(CALL_THREADS, "agentstore-call")
        self.watchers: list[Callable[[str], object]] = []
        self._writers: AbstractAsyncContextManager[object] = (
            asyncio.Lock() if backend.one_writer_at_a_time else nullcontext()
        )

    @property
    def calls_engine(self) -> Engine:
        """The sync engine the calls run on."""
        return self._calls.engine

    async def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            return await self._run(True, repository, operation, args, kwargs)
        except WriteNeeded:  # as TransactionPerCall.read
            return await self.write(repository, operation, *args, **kwargs)

    async def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        refuse_beside_own_unit(self.key, operation.__qualname__)
        async with self._writers:
            result: T = await self._run(False, repository, operation, args, kwargs)
        for watcher in self.watchers:
            watcher(operation.__name__)
        return result

    async def _run(
        self,
        read_only: bool,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        args: Any,
        kwargs: Any,
    ) -> T:
        calls = self._calls
        if self._threads is None:
            return await greenlet_spawn(calls.run, read_only, repository, operation, args, kwargs)
        # In the caller's context: its span is the parent of the call's.
        return await self._threads.run(calls.run, read_only, repository, operation, args, kwargs)

    async def close(self) -> None:
        """Let the calls under way end, then close every pooled connection."""
        if self._threads is not None:
            await asyncio.to_thread(self._threads.close)
            self._calls.engine.dispose()
        await self.engine.dispose()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncConnection]:
        """As ``TransactionPerCall.unit``."""
        refuse_beside_own_unit(self.key, "transaction()")
        with translated(self.backend):
            connection = await self.engine.connect()
        try:
            with translated(self.backend):
                await connection.begin()
            with unit_open(self.key):
                yield connection
            await connection.run_sync(commit, self.backend)
        finally:
            await connection.close()


class AsyncSavepointPerCall(AsyncCalls):
    """Each call: a savepoint on an ``AsyncConnection`` someone else owns."""

    def __init__(
        self, connection: AsyncConnection, backend: Backend, telemetry: Telemetry = SILENT
    ) -> None:
        self.connection = connection
        self.backend = backend
        self.telemetry = telemetry
        # Calls from several tasks on one unit take turns: their savepoints would nest.
        self._lock = asyncio.Lock()

    async def read(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await self.write(repository, operation, *args, **kwargs)

    async def write(
        self,
        repository: type[Repo],
        operation: Operation[Repo, P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            async with self._lock:
                return await self.connection.run_sync(
                    in_savepoint, self.backend, self.telemetry, repository, operation, args, kwargs
                )
        except AgentStoreError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self.backend.translate(exc) from exc
