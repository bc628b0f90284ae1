"""``AgentStore``: the sync face. It owns an engine and hands out the repositories' faces:
each call on the store is its own transaction; ``store.transaction()`` groups calls in
one; ``store.on(connection)`` puts them in a transaction the host owns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy.engine import URL, Connection, Engine

from agentstore import validation
from agentstore.backends import (
    CONFIGURED,
    Backend,
    backend_for,
    check_schema,
    configure,
    create_engine,
    in_schema,
    resolve_schema,
    schema_of,
)
from agentstore.boundary import SavepointPerCall, TransactionPerCall, translated
from agentstore.errors import UnsupportedDatabaseError, ValidationError
from agentstore.faces import Faces
from agentstore.schema import migrate
from agentstore.telemetry import SILENT, Telemetry, telemetry_for


class Unit(Faces):
    """Calls that share one transaction on one connection: ``tx.tasks.complete(...)``.

    Each call runs in a savepoint: a call that raises is undone alone and the unit goes
    on (on PostgreSQL a failed statement never aborts the transaction). The unit's owner
    commits what reported success, or rolls it all back. One thread (or asyncio task)
    at a time; ``connection`` is there for the host's own statements in the same
    transaction.
    """

    def __init__(
        self, connection: Connection, backend: Backend, telemetry: Telemetry = SILENT
    ) -> None:
        super().__init__(SavepointPerCall(connection, backend, telemetry))
        self.connection = connection


class AgentStore(Faces):
    """Storage for orchestrator runs and execution history (sync).

    Every call on the store is its own transaction; ``with store.transaction() as tx``
    groups calls into one. Calls return immutable records, never live ORM objects. One
    store may be shared by many threads.
    """

    def __init__(
        self, engine: Engine, *, schema: str | None = None, telemetry: bool = True
    ) -> None:
        """Use ``engine`` (see ``AgentStore.open`` for one made from a URL). An engine made
        elsewhere gets agentstore's connection settings attached. ``schema``: the
        PostgreSQL schema the store's tables live in; ``telemetry``: whether the store
        emits OpenTelemetry spans and metrics (see ``open``)."""
        if not isinstance(engine, Engine):
            raise UnsupportedDatabaseError(
                f"AgentStore takes a sync Engine, got {type(engine).__name__} "
                "(for an AsyncEngine, use AsyncAgentStore)"
            )
        self.backend = configure(engine)
        #: The store's engine: connections of it name the store's schema.
        self.engine = in_schema(engine, check_schema(self.backend, schema))
        #: The PostgreSQL schema of the store's tables; None: the connection's default.
        self.schema = schema_of(self.engine)
        #: What the store emits to OpenTelemetry (``agentstore.telemetry``): nothing
        #: without the extra ``agentstore[otel]``, or with ``telemetry=False``.
        self.telemetry = telemetry_for(self.backend.name, validation.flag(telemetry, "telemetry"))
        self._calls = TransactionPerCall(self.engine, self.backend, self.telemetry)
        super().__init__(self._calls)

    @classmethod
    def open(
        cls, url: str | URL | None = None, *, schema: str | None = None, telemetry: bool = True
    ) -> AgentStore:
        """Open the store at ``url``, else ``$AGENTSTORE_DATABASE_URL``, else
        ``sqlite:///agentstore.db``. Nothing is created until ``migrate()``.

        ``schema`` (else ``$AGENTSTORE_SCHEMA``): on PostgreSQL, the schema every table
        of the store lives in, created by ``migrate()`` if absent; every statement names
        it, so nothing depends on ``search_path``. Stores in two schemas of one database
        are independent. SQLite has no schemas: it ignores one, with a warning.

        ``telemetry``: with OpenTelemetry's API installed (``agentstore[otel]``), the
        store emits a span per call and the worker's metrics to the global providers
        (see ``agentstore.telemetry``); False, it emits nothing. Raises
        ``ValidationError``, ``UnsupportedDatabaseError``."""
        engine = create_engine(url)
        return cls(
            engine, schema=resolve_schema(backend_for(engine.url), schema), telemetry=telemetry
        )

    def migrate(self) -> None:
        """Upgrade the database to the newest schema, on the right tree for its dialect."""
        migrate(self.engine.url, schema=self.schema)

    @contextmanager
    def transaction(self) -> Iterator[Unit]:
        """``with store.transaction() as tx:`` — the calls made through ``tx`` share one
        transaction, committed when the block ends and rolled back if an exception
        leaves it. A call through ``tx`` that raises is undone alone (see ``Unit``).
        Raises ``StoreUnavailableError`` if the commit fails (nothing is then committed),
        ``ValidationError`` if the caller already holds a unit of this store (the second
        would wait for the first's locks).
        """
        with self._calls.unit() as connection:
            yield Unit(connection, self.backend, self.telemetry)

    def on(self, connection: Connection) -> Unit:
        """The repositories bound to a connection the host opened, inside the host's
        transaction: agentstore neither begins nor commits it (SQLAlchemy begins it on
        first use if the host has not). The host commits, and our writes are there; it
        rolls back, and none are. The connection must come from an engine agentstore
        configured: ``store.engine``, the only one that names the store's schema."""
        require_configured(connection, Connection, self.backend, self.schema)
        return Unit(connection, self.backend, self.telemetry)

    def watch_writes(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(operation_name)`` after each write made through the store
        itself commits (not through its units), in the thread or task that made it. A
        worker watches its own store so that a plan made in its process wakes it at
        once. Returns the function that stops the watching."""
        watchers = self._calls.watchers
        watchers.append(callback)
        return lambda: watchers.remove(callback)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> AgentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def require_configured(
    connection: object, kind: type, backend: Backend, schema: str | None
) -> None:
    """Refuse a host's connection agentstore cannot work on: not a ``kind`` (a sync or
    an asyncio Connection), another database, another schema than the store's, or
    opened without agentstore's settings."""
    if not isinstance(connection, kind):
        raise ValidationError(f"on() takes a {kind.__name__}, got {type(connection).__name__}")
    sync: Connection = getattr(connection, "sync_connection", None) or connection  # type: ignore[assignment]
    if backend_for(sync.engine.url) is not backend:
        raise ValidationError(
            f"on() takes a connection to {backend.name}, not {sync.engine.url.get_backend_name()}"
        )
    if schema_of(sync) != schema:
        raise ValidationError(
            f"on() takes a connection of store.engine: this one names schema "
            f"{schema_of(sync)!r}, the store's is {schema!r}"
        )
    with translated(backend):
        configured = sync.connection.info.get(CONFIGURED, False)
    if not configured:
        raise UnsupportedDatabaseError(
            "on() takes a connection opened by an engine agentstore configured "
            "(store.engine, or an engine given to the store before connecting): this one "
            "lacks agentstore's connection settings"
        )
