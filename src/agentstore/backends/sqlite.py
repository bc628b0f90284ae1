"""SQLite: the embedded default. One file, one writer at a time, the local clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, Connection, Engine

from agentstore.backends.base import (
    READ_ONLY,
    TRANSACTION_POOLING,
    Backend,
    first_line,
    on_driver_cursor,
)
from agentstore.errors import (
    AgentStoreError,
    ConflictError,
    NotFoundError,
    NotMigratedError,
    StoreUnavailableError,
    UnsupportedDatabaseError,
    ValidationError,
)
from agentstore.types import UTCDateTime

MIN_SQLITE_VERSION = (3, 35, 0)  # UPDATE … RETURNING, which atomic claims are built on
BUSY_TIMEOUT_MS = 30_000
#: The WAL is copied back into the database (a checkpoint, an fsync of each file) once
#: it holds this many pages; SQLite's default is 1,000. A claim with its completion
#: writes about 16 pages, mostly the same index pages again, which a longer WAL copies
#: once: on the claim loop, checkpoints fall from about 270 to 175 µs a task, for a
#: checkpoint every 250 transactions of about 50 ms, where it was every 60 of 20 ms.
WAL_AUTOCHECKPOINT_PAGES = 4_000
#: Every connection's settings (the benchmarks' raw sqlite3 loops take the same).
CONNECTION_PRAGMAS = (
    "journal_mode=WAL",  # readers never block the writer
    "foreign_keys=ON",
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "synchronous=NORMAL",  # durable enough with WAL
    f"wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}",
)


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
    """Every new connection, through the DB-API (the same calls work on sqlite3 and on
    SQLAlchemy's adapter of aiosqlite)."""
    # Take transaction control away from the driver, so that ``_begin`` below decides
    # how each transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in CONNECTION_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
    # SQLite's own lower() and LIKE fold ASCII only; searches use Python's.
    dbapi_connection.create_function("agentstore_lower", 1, _lower, deterministic=True)


def _begin(connection: Connection) -> None:
    """Every transaction. A deferred transaction that later writes cannot wait for the
    write lock: it fails with "database is locked". So every transaction takes the write
    lock up front (waiting up to the busy timeout), unless it is marked read-only.

    Sent on a DB-API cursor (``on_driver_cursor``), which works on either driver."""
    read_only = connection.get_execution_options().get(READ_ONLY)
    on_driver_cursor(connection, "BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class SQLiteBackend(Backend):
    name = "sqlite"
    migrations_tree = "local"
    sync_driver = "pysqlite"
    async_driver = "aiosqlite"
    async_url_driver = "aiosqlite"
    one_writer_at_a_time = True
    # aiosqlite hops to its thread about ten times in one write (0.1 ms each); sqlite3
    # in the store's threads takes one hop per call (see ``AsyncAgentStore``).
    async_calls_in_threads = True

    def configure(self, engine: Engine) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            wanted = ".".join(map(str, MIN_SQLITE_VERSION))
            raise UnsupportedDatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old: agentstore needs {wanted} or newer"
            )
        if self.is_configured(engine):
            return
        sa.event.listen(engine, "connect", _configure_connection)
        sa.event.listen(engine, "connect", self.mark_configured)
        sa.event.listen(engine, "begin", _begin)
        engine.dispose()  # connections opened before lack the settings

    def enter_schema(self, connection: Connection, schema: str | None) -> None:
        """No schemas: ``check_schema`` never gives SQLite one."""

    @contextmanager
    def migration_transaction(self, connection: Connection) -> Iterator[None]:
        # Batch migrations copy and drop tables, which foreign keys would cascade through;
        # SQLite ignores this pragma inside a transaction, so it is set before BEGIN (on a
        # DB-API cursor: a SQLAlchemy statement would begin the transaction first).
        on_driver_cursor(connection, "PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():  # BEGIN IMMEDIATE: the database's write lock
                yield
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if violations:
                    raise sa.exc.IntegrityError(
                        "PRAGMA foreign_key_check", None, Exception(str(violations[:5]))
                    )
        finally:
            on_driver_cursor(connection, "PRAGMA foreign_keys=ON")

    def clock(self) -> sa.ColumnElement[datetime]:
        # One machine: the local clock is the database's clock.
        return sa.literal(datetime.now(UTC), UTCDateTime())

    def check_url(self, url: URL) -> None:
        super().check_url(url)
        if TRANSACTION_POOLING in url.query:
            raise UnsupportedDatabaseError(
                f"{TRANSACTION_POOLING} is for PostgreSQL behind a pooler, not SQLite"
            )

    def deadline(self, name: str = "lease") -> sa.ColumnElement[datetime]:
        return sa.bindparam(name, type_=UTCDateTime())

    def lease_parameter(self, lease: timedelta) -> Any:
        return datetime.now(UTC) + lease  # the local clock is the database's

    def claimable(self, candidates: sa.Select[Any], key: Any) -> Any:
        # Write transactions begin IMMEDIATE, so the database's one writer runs the whole
        # UPDATE … WHERE key IN (SELECT … LIMIT n) before any other claimer reads.
        return key.in_(candidates)

    def transaction_id(self) -> sa.ColumnElement[int]:
        # One writer at a time (BEGIN IMMEDIATE): events commit in the order of their
        # ids, so every event is of "transaction 0" and the id alone orders them.
        return sa.literal(0, sa.BigInteger)

    def settled_below(self) -> sa.ColumnElement[int]:
        return sa.literal(1, sa.BigInteger)

    def insert(self, table: Any) -> Any:
        return sqlite.insert(table)

    def contains_text(self, column: Any, pattern: str, escape: str) -> sa.ColumnElement[bool]:
        lowered = sa.func.agentstore_lower(column, type_=sa.Text)
        return lowered.like(pattern.lower(), escape=escape)

    def plan_for_parameters(self, connection: Connection) -> None:
        # Nothing to change: SQLite (built without STAT4, as Python's is) never looks at
        # the parameters' values when it plans, so no plan is chosen for other values.
        return None

    def bucket_start(self, column: Any, width_seconds: int) -> sa.ColumnElement[int]:
        # Timestamps are stored as UTC text; strftime('%s') reads them as Unix seconds.
        # Integer division floors (the times are after 1970); no math extension needed.
        epoch = sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
        return epoch // width_seconds * width_seconds

    def classify_driver_error(self, exc: sa.exc.DBAPIError) -> AgentStoreError:
        detail = first_line(exc.orig) if exc.orig is not None else first_line(exc)
        kind: type[AgentStoreError] | None = None
        if "UNIQUE constraint failed" in detail or "PRIMARY KEY" in detail:
            kind = ConflictError
        elif "FOREIGN KEY constraint failed" in detail:
            kind = NotFoundError
        elif "CHECK constraint failed" in detail or "NOT NULL constraint failed" in detail:
            kind = ValidationError
        elif "no such table" in detail or "no such column" in detail:
            return NotMigratedError(
                f"the database does not have agentstore's schema ({detail}): "
                "run `agentstore db upgrade`"
            )
        if kind is not None:
            return kind(detail)
        transient = (
            exc.connection_invalidated
            or "database is locked" in detail
            or "database table is locked" in detail
            or "disk I/O error" in detail
        )
        return StoreUnavailableError(detail, retryable=transient)
