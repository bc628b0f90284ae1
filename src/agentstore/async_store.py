"""``AsyncAgentStore``: the asyncio face. The same operations as ``AgentStore`` (no SQL or
validation of its own), awaited, so the event loop never blocks on the database. On
PostgreSQL each runs on the sync side of an ``AsyncConnection`` (SQLAlchemy's greenlet
bridge) over psycopg's async connection. On a SQLite file each call runs on sqlite3 in
one of the store's threads, one hop per call: aiosqlite, itself sqlite3 in a thread,
would hop to it for each cursor, execute, fetch and close (``boundary``). Units and a
host's connections run on the async engine (aiosqlite) either way.

    async with AsyncAgentStore.open("sqlite:///agentstore.db") as store:
        await store.migrate()
        run = await store.runs.create("goal", "/repo")
        async with store.transaction() as tx:
            await tx.events.add(run.id, "worker", "note", "in one transaction")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from agentstore import validation
from agentstore.async_faces import AsyncFaces
from agentstore.backends import (
    Backend,
    backend_for,
    check_schema,
    configure,
    create_async_engine,
    in_schema,
    resolve_schema,
    schema_of,
    threaded_twin,
)
from agentstore.boundary import AsyncSavepointPerCall, AsyncTransactionPerCall
from agentstore.errors import UnsupportedDatabaseError
from agentstore.schema import migrate
from agentstore.store import require_configured
from agentstore.telemetry import SILENT, Telemetry, telemetry_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class AsyncUnit(AsyncFaces):
    """Calls that share one transaction on one ``AsyncConnection``, as ``Unit``. Calls
    from several tasks on one unit take turns."""

    def __init__(
        self, connection: AsyncConnection, backend: Backend, telemetry: Telemetry = SILENT
    ) -> None:
        super().__init__(AsyncSavepointPerCall(connection, backend, telemetry))
        self.connection = connection


class AsyncAgentStore(AsyncFaces):
    """Storage for orchestrator runs and execution history, for asyncio programs.

    Every call is awaitable and is its own transaction; ``async with
    store.transaction() as tx`` groups calls into one. One store may be shared by any
    number of tasks of one event loop; no two tasks ever share a transaction.
    """

    def __init__(
        self, engine: AsyncEngine, *, schema: str | None = None, telemetry: bool = True
    ) -> None:
        """Use ``engine`` (see ``AsyncAgentStore.open`` for one made from a URL). An
        engine made elsewhere gets agentstore's connection settings attached.
        ``schema``, ``telemetry``: as ``AgentStore.open``'s."""
        sync_engine = getattr(engine, "sync_engine", None)
        if sync_engine is None:
            raise UnsupportedDatabaseError(
                f"AsyncAgentStore takes an AsyncEngine, got {type(engine).__name__} "
                "(for a sync Engine, use AgentStore)"
            )
        self.backend = configure(sync_engine)
        #: The store's engine: connections of it name the store's schema.
        self.engine = in_schema(engine, check_schema(self.backend, schema))
        #: The PostgreSQL schema of the store's tables; None: the connection's default.
        self.schema = schema_of(self.engine.sync_engine)
        #: What the store emits to OpenTelemetry, as ``AgentStore.telemetry``.
        self.telemetry = telemetry_for(self.backend.name, validation.flag(telemetry, "telemetry"))
        self._calls = AsyncTransactionPerCall(
            self.engine, self.backend, self.telemetry, threaded_twin(self.engine)
        )
        #: The sync engine the store's own calls run on: the engine's ``sync_engine``,
        #: or on a SQLite file, a sqlite3 engine on the same file (see
        #: ``Backend.async_calls_in_threads``). Units run on ``engine``.
        self.calls_engine = self._calls.calls_engine
        super().__init__(self._calls)

    @classmethod
    def open(
        cls, url: str | URL | None = None, *, schema: str | None = None, telemetry: bool = True
    ) -> AsyncAgentStore:
        """The store at ``url``, else ``$AGENTSTORE_DATABASE_URL``, else
        ``sqlite:///agentstore.db``, on the asyncio driver (``sqlite://`` URLs get
        aiosqlite, ``postgresql://`` ones psycopg's async connection). Use it as
        ``async with AsyncAgentStore.open(url) as store``. Nothing is created until
        ``migrate()``. ``schema``, ``telemetry``: as ``AgentStore.open``'s."""
        engine = create_async_engine(url)
        return cls(
            engine, schema=resolve_schema(backend_for(engine.url), schema), telemetry=telemetry
        )

    async def migrate(self) -> None:
        """Upgrade the database to the newest schema (Alembic runs on the sync driver, in
        a worker thread, so the event loop goes on)."""
        await asyncio.to_thread(migrate, self.engine.url, schema=self.schema)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncUnit]:
        """``async with store.transaction() as tx:`` — as ``AgentStore.transaction``."""
        async with self._calls.unit() as connection:
            yield AsyncUnit(connection, self.backend, self.telemetry)

    def on(self, connection: AsyncConnection) -> AsyncUnit:
        """The repositories bound to an ``AsyncConnection`` the host opened, inside the
        host's transaction, as ``AgentStore.on``."""
        from sqlalchemy.ext.asyncio import AsyncConnection

        require_configured(connection, AsyncConnection, self.backend, self.schema)
        return AsyncUnit(connection, self.backend, self.telemetry)

    def watch_writes(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(operation_name)`` after each write made through the store
        itself commits (not through its units), in the thread or task that made it. A
        worker watches its own store so that a plan made in its process wakes it at
        once. Returns the function that stops the watching."""
        watchers = self._calls.watchers
        watchers.append(callback)
        return lambda: watchers.remove(callback)

    async def close(self) -> None:
        """Close every pooled connection (after the calls under way have ended)."""
        await self._calls.close()

    async def __aenter__(self) -> AsyncAgentStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
