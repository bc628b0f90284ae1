"""What a database backend must provide: the SQL pieces that differ between SQLite and
PostgreSQL, the connection settings every engine gets, and what a driver error means."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from agentstore.errors import (
    AgentStoreError,
    StoreUnavailableError,
    UnsupportedDatabaseError,
    ValidationError,
)

if TYPE_CHECKING:
    from agentstore.backends.listen import Listener

# Execution option that marks a transaction as read-only (see each backend's BEGIN).
READ_ONLY = "agentstore_read_only"
# Execution option that marks a connection whose call is one statement, run with no
# transaction around it (see ``Backend.data_modifying_ctes``).
ONE_STATEMENT = "agentstore_one_statement"
# Set in a pooled connection's ``info`` once agentstore's settings are applied to it.
CONFIGURED = "agentstore_configured"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def on_driver_cursor(
    connection: Connection,
    sql: str,
    parameters: Any = None,
    *,
    many: bool = False,
    returns_rows: bool = False,
    describe: bool = False,
) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run ``sql`` on a DB-API cursor of ``connection``, outside SQLAlchemy's statement
    path. For a transaction's BEGIN, sent from the ``begin`` hook (where a SQLAlchemy
    statement would begin the transaction again) on every call (where that path would
    add its cost to each), and for the hot path's statements
    (``agentstore.driver_statements``).

    ``parameters`` are the driver's own (None: the SQL has no placeholders; a list of
    them, sent in one ``executemany``, when ``many``). Gives the cursor's
    ``description`` if ``describe`` (else None: psycopg builds it anew on each look, an
    object per column) and the rows, if ``returns_rows`` (the statement is one that
    returns rows, a SELECT or a RETURNING; else none). A driver error comes out as
    SQLAlchemy's ``DBAPIError``, as from any statement, so that the faces translate it;
    a connection found lost is invalidated, as SQLAlchemy does, so that the pool never
    hands it out again."""
    dbapi_connection: Any = connection.connection.dbapi_connection
    dialect = connection.dialect
    cursor = dbapi_connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        return (
            cursor.description if describe else None,
            cursor.fetchall() if returns_rows else [],
        )
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        failure = sa.exc.DBAPIError.instance(
            sql,
            parameters,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            connection_invalidated=lost,
            dialect=dialect,
        )
    finally:
        cursor.close()
    if lost:
        connection.invalidate(failure.orig)
    raise failure from failure.orig


def isolation_level(engine: Engine) -> str | None:
    """The isolation level ``engine`` was made with (its option or its dialect's), if any."""
    level: str | None = engine.get_execution_options().get("isolation_level") or getattr(
        engine.dialect, "_on_connect_isolation_level", None
    )
    return level


#: The URL query parameter saying the URL is a pooler in transaction mode (PgBouncer's
#: ``pool_mode = transaction``): each transaction may run on another server session.
TRANSACTION_POOLING = "transaction_pooling"


class Backend(ABC):
    """What one database needs that the other does not. One instance per database kind."""

    name: str
    #: The Alembic revision tree for this database, a folder of ``migrations/``.
    migrations_tree: str
    #: The drivers agentstore runs on: (sync, asyncio).
    sync_driver: str
    async_driver: str
    #: The database takes one write transaction at a time. A face then queues its own
    #: writers on a lock in the process, rather than leaving them to wait inside the
    #: database (SQLite's busy handler sleeps up to 100 ms a turn: many waiting writers
    #: starve one another, and hold their pooled connections while they do).
    one_writer_at_a_time: bool = False
    #: The database runs INSERT/UPDATE inside WITH (data-modifying CTEs), so that a step
    #: that writes several tables (a completion, its attempt, its event, the next claim)
    #: is one statement: atomic on its own, it needs no transaction around it, and a
    #: face runs it with no BEGIN and COMMIT (marked ``ONE_STATEMENT``).
    data_modifying_ctes: bool = False
    #: The database has schemas (namespaces for tables) a store can be put in.
    schemas: bool = False
    #: The asyncio face runs its calls on the sync driver in threads of its own, one
    #: hop to a thread per call, rather than on the async driver through SQLAlchemy's
    #: greenlet bridge. Worth it where the async driver is itself a thread around the
    #: sync one (aiosqlite), hopping to it for every cursor, execute, fetch and close.
    async_calls_in_threads: bool = False

    # -- engines ------------------------------------------------------------------

    #: ``create_engine`` options agentstore's own engines start from.
    engine_defaults: dict[str, Any] = {}  # noqa: RUF012 - read-only

    def check_url(self, url: URL) -> None:
        """Refuse a driver agentstore does not run on."""
        driver = url.get_driver_name()
        if driver not in (self.sync_driver, self.async_driver):
            raise UnsupportedDatabaseError(
                f"agentstore runs on {self.name} through the {self.sync_driver} and "
                f"{self.async_driver} drivers, not {driver!r}"
            )

    #: The driver names as written in a URL, where they differ from the ones above.
    sync_url_driver: str | None = None
    async_url_driver: str | None = None

    def sync_url(self, url: URL) -> URL:
        """``url`` on the sync driver."""
        if url.get_driver_name() == self.sync_driver:
            return url
        return url.set(drivername=self._drivername(self.sync_url_driver))

    def async_url(self, url: URL) -> URL:
        """``url`` on the asyncio driver."""
        if url.get_driver_name() == self.async_driver:
            return url
        return url.set(drivername=self._drivername(self.async_url_driver))

    def _drivername(self, driver: str | None) -> str:
        return self.name if driver is None else f"{self.name}+{driver}"

    @abstractmethod
    def configure(self, engine: Engine) -> None:
        """Attach every connection setting this database needs to ``engine`` (a sync
        engine, or an async engine's ``sync_engine``): event hooks that work the same on
        the sync and the asyncio driver. Connections opened before this lack them, so
        the engine's pool is emptied."""

    @staticmethod
    def mark_configured(_dbapi_connection: Any, connection_record: Any) -> None:
        """A ``connect`` hook: this connection has agentstore's settings."""
        connection_record.info[CONFIGURED] = True

    def is_configured(self, engine: Engine) -> bool:
        return sa.event.contains(engine, "connect", self.mark_configured)

    @abstractmethod
    def migration_transaction(self, connection: Connection) -> AbstractContextManager[None]:
        """One transaction around a whole upgrade, held exclusively: when several
        processes upgrade at once, one applies and the others wait, then find nothing to do."""

    @abstractmethod
    def enter_schema(self, connection: Connection, schema: str | None) -> None:
        """Make the migrations of this transaction run in ``schema``, creating it if
        absent (only a database with ``schemas`` is ever given one)."""

    @property
    def read_only_options(self) -> dict[str, Any]:
        """Connection execution options for a read-only transaction that sees one
        consistent snapshot of the database across all its statements."""
        return {READ_ONLY: True}

    def transaction_aborted(self, connection: Connection) -> bool:
        """Whether the database has already failed this transaction, so that a COMMIT
        would quietly roll it back instead."""
        return False

    # -- SQL pieces -----------------------------------------------------------------

    @abstractmethod
    def clock(self) -> sa.ColumnElement[datetime]:
        """The current time as a SQL expression: the database's clock where there is a
        shared server (so workers on many machines agree), the local clock otherwise."""

    @abstractmethod
    def deadline(self, name: str = "lease") -> sa.ColumnElement[datetime]:
        """``clock()`` plus a duration (a lease, a delay; zero for "now"), as a SQL
        expression over the bound parameter ``name``, whose value ``lease_parameter``
        gives. A bound parameter (not a literal) lets a statement be built once and run
        many times."""

    def expiry(self, name: str = "lease") -> sa.ColumnElement[datetime]:
        """When a lease granted by this write runs out: like ``deadline``, but from the
        clock at the moment the row is written, after the write's locks are held (a
        transaction's start, or a wait for a lock, never shortens a lease). By default
        ``deadline``: its parameter is taken once the write lock is held."""
        return self.deadline(name)

    @abstractmethod
    def lease_parameter(self, lease: timedelta) -> Any:
        """The value to bind for ``deadline()``'s parameter."""

    def listener(self, url: URL, channels: tuple[str, ...]) -> Listener | None:
        """A connection of its own that LISTENs on ``channels`` (see ``backends.listen``),
        or None where the database cannot notify (then callers poll)."""
        return None

    @abstractmethod
    def claimable(self, candidates: sa.Select[Any], key: Any) -> Any:
        """The WHERE criterion of an atomic claim: rows whose ``key`` is among
        ``candidates`` (a SELECT of keys with its own ORDER BY and LIMIT), taken so that
        concurrent claimers never get the same row."""

    @abstractmethod
    def transaction_id(self) -> sa.ColumnElement[int]:
        """The writing transaction's id, stored with each event: a follower reads a run's
        journal in (transaction id, event id) order, never past a transaction that may
        still commit (see ``settled_below``), so it never passes over an event, and no
        writer waits for another (an event's id is drawn when it is written but seen
        only when its transaction commits: by id alone, a late commit would be passed
        over)."""

    @abstractmethod
    def settled_below(self) -> sa.ColumnElement[int]:
        """A transaction id below which every transaction has ended: events stored with
        a lower one are all visible and no more will come."""

    @abstractmethod
    def insert(self, table: Any) -> Any:
        """An INSERT that supports ``on_conflict_do_update`` (a one-statement upsert)."""

    @abstractmethod
    def contains_text(self, column: Any, pattern: str, escape: str) -> sa.ColumnElement[bool]:
        """Case-insensitive (Unicode-aware) LIKE of ``column`` against ``pattern``."""

    @abstractmethod
    def plan_for_parameters(self, connection: Connection) -> None:
        """Have the rest of the transaction's statements planned for their actual
        parameters, not from a cached generic plan. Where the best plan depends on the
        values (a listing: a small scope, a rare status, a narrow time range), a generic
        plan chosen for the average case can be many times slower."""

    @abstractmethod
    def bucket_start(self, column: Any, width_seconds: int) -> sa.ColumnElement[int]:
        """Unix seconds of the start of the ``width_seconds`` bucket holding the
        timestamp ``column``: ``floor(epoch / width) * width``."""

    # -- errors ---------------------------------------------------------------------

    def translate(self, exc: sa.exc.SQLAlchemyError) -> AgentStoreError:
        """The agentstore error for an exception SQLAlchemy raised."""
        if isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, AgentStoreError):
            return exc.orig  # one of our types refused a value while it was bound
        if isinstance(exc, sa.exc.DBAPIError):
            return self.classify_driver_error(exc)
        if isinstance(exc, sa.exc.StatementError) and isinstance(
            exc.orig, TypeError | ValueError | AttributeError
        ):
            return ValidationError(f"a value could not be sent to the database: {exc.orig}")
        if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free
            return StoreUnavailableError(f"no database connection free: {exc}", retryable=True)
        # A transaction that can no longer be used (its connection was lost earlier).
        return StoreUnavailableError(f"database call failed: {first_line(exc)}")

    def translate_committing(self, exc: sa.exc.SQLAlchemyError) -> AgentStoreError:
        """``translate``, for a failure that came while a write was committing (or
        running, for a write of a single statement in autocommit): where the database
        gave no answer, the client cannot know whether it committed."""
        error = self.translate(exc)
        if isinstance(error, StoreUnavailableError) and self.outcome_unknown(exc):
            error.maybe_committed = True
        return error

    def outcome_unknown(self, exc: sa.exc.SQLAlchemyError) -> bool:
        """Whether a failure leaves the outcome of a COMMIT unknown to the client. Not
        on an embedded database: its COMMIT either returned or failed."""
        return False

    @abstractmethod
    def classify_driver_error(self, exc: sa.exc.DBAPIError) -> AgentStoreError:
        """The agentstore error for an error the driver raised."""
