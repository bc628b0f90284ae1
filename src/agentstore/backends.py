"""Everything that differs between SQLite and PostgreSQL lives here, behind one small
object chosen once from the database URL. The rest of agentstore never asks which
database it is talking to."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from agentstore.errors import (
    AgentStoreError,
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
    UnsupportedDatabaseError,
    ValidationError,
)
from agentstore.types import UTCDateTime, dumps_json

DEFAULT_URL = "sqlite:///agentstore.db"
URL_ENV_VAR = "AGENTSTORE_DATABASE_URL"
MIN_SQLITE_VERSION = (3, 35, 0)  # UPDATE … RETURNING, which atomic claims are built on

# Execution option that marks a transaction as read-only (see SQLiteBackend).
READ_ONLY = "agentstore_read_only"


def resolve_url(url: str | URL | None = None) -> URL:
    """The URL given, else ``$AGENTSTORE_DATABASE_URL``, else the embedded SQLite file.

    A bare ``postgresql://`` URL is given the psycopg 3 driver, the one agentstore ships with.
    """
    try:
        resolved = make_url(url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL)
    except sa.exc.ArgumentError as exc:
        raise UnsupportedDatabaseError(f"not a database URL: {url!r}") from exc
    if resolved.drivername in ("postgresql", "postgres"):
        resolved = resolved.set(drivername="postgresql+psycopg")
    return resolved


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


class Backend(ABC):
    """What one database needs that the other does not."""

    name: str
    #: The Alembic revision tree for this database, a folder of ``migrations/``.
    migrations_tree: str

    @abstractmethod
    def create_engine(self, url: URL, **engine_options: Any) -> Engine:
        """An engine with every connection setting this database needs."""

    @abstractmethod
    def migration_transaction(self, connection: Connection) -> AbstractContextManager[None]:
        """One transaction around a whole upgrade, held exclusively: when several
        processes upgrade at once, one applies and the others wait, then find nothing to do."""

    @property
    def read_only_options(self) -> dict[str, Any]:
        """Connection execution options for a read-only transaction that sees one
        consistent snapshot of the database across all its statements."""
        return {READ_ONLY: True}

    @abstractmethod
    def clock(self) -> sa.ColumnElement[datetime]:
        """The current time as a SQL expression: the database's clock where there is a
        shared server (so workers on many machines agree), the local clock otherwise."""

    @abstractmethod
    def deadline(self) -> sa.ColumnElement[datetime]:
        """``clock()`` plus a lease, as a SQL expression over the bound parameter
        ``lease``, whose value ``lease_parameter`` gives. A bound parameter (not a
        literal) lets a statement be built once and run many times."""

    @abstractmethod
    def lease_parameter(self, lease: timedelta) -> Any:
        """The value to bind as ``lease`` in ``deadline()``."""

    @abstractmethod
    def claimable(self, candidates: sa.Select[Any], key: Any) -> Any:
        """The WHERE criterion of an atomic claim: rows whose ``key`` is among
        ``candidates`` (a SELECT of keys with its own ORDER BY and LIMIT), taken so that
        concurrent claimers never get the same row."""

    @abstractmethod
    def take_journal_turn(self, connection: Connection, run_ids: Iterable[uuid.UUID]) -> None:
        """Wait until the other writers to these runs' journals have committed, and make
        later ones wait for this transaction, so that a run's events become visible in
        the order of their ids: a follower reading the events above the last id it saw
        then never passes over one. Called just before the events are inserted."""

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

    def translate_error(self, exc: sa.exc.DBAPIError) -> AgentStoreError:
        """The agentstore error for a driver error."""
        kind = self.classify_error(exc)
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return kind(detail)

    @abstractmethod
    def classify_error(self, exc: sa.exc.DBAPIError) -> type[AgentStoreError]:
        """Which agentstore error a driver error means."""


class SQLiteBackend(Backend):
    name = "sqlite"
    migrations_tree = "local"
    busy_timeout_ms = 30_000

    def __init__(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            wanted = ".".join(map(str, MIN_SQLITE_VERSION))
            raise UnsupportedDatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old: agentstore needs {wanted} or newer"
            )

    def create_engine(self, url: URL, **engine_options: Any) -> Engine:
        engine = sa.create_engine(url, json_serializer=dumps_json, **engine_options)
        busy_timeout_ms = self.busy_timeout_ms

        @event.listens_for(engine, "connect")
        def configure_connection(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module, so the "begin"
            # listener below decides how each transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL
            cursor.close()
            # SQLite's own lower() and LIKE fold ASCII only; searches use Python's.
            dbapi_connection.create_function("agentstore_lower", 1, _lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def begin_transaction(connection: Connection) -> None:
            # A deferred transaction that later writes cannot wait for the write lock: it
            # fails with "database is locked". So every transaction takes the write lock up
            # front (waiting up to busy_timeout), unless it is marked read-only.
            # Sent straight to the driver: this runs on every transaction, and going
            # through SQLAlchemy's statement machinery would add to every call's cost.
            mode = "DEFERRED" if connection.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
            driver_connection = connection.connection.driver_connection
            assert driver_connection is not None
            driver_connection.execute(f"BEGIN {mode}")

        return engine

    @contextmanager
    def migration_transaction(self, connection: Connection) -> Iterator[None]:
        # Batch migrations copy and drop tables, which foreign keys would cascade through;
        # SQLite ignores this pragma inside a transaction, so it is set before BEGIN.
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():  # BEGIN IMMEDIATE: the database's write lock
                yield
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if violations:
                    raise sa.exc.IntegrityError(
                        "PRAGMA foreign_key_check", None, Exception(str(violations[:5]))
                    )
        finally:
            driver_connection.execute("PRAGMA foreign_keys=ON")

    def clock(self) -> sa.ColumnElement[datetime]:
        # One machine: the local clock is the database's clock.
        return sa.literal(datetime.now(UTC), UTCDateTime())

    def deadline(self) -> sa.ColumnElement[datetime]:
        return sa.bindparam("lease", type_=UTCDateTime())

    def lease_parameter(self, lease: timedelta) -> Any:
        return datetime.now(UTC) + lease  # the local clock is the database's

    def claimable(self, candidates: sa.Select[Any], key: Any) -> Any:
        # Write transactions begin IMMEDIATE, so the database's one writer runs the whole
        # UPDATE … WHERE key IN (SELECT … LIMIT n) before any other claimer reads.
        return key.in_(candidates)

    def take_journal_turn(self, connection: Connection, run_ids: Iterable[uuid.UUID]) -> None:
        # One writer at a time (BEGIN IMMEDIATE): ids are drawn and committed in order.
        return None

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

    def classify_error(self, exc: sa.exc.DBAPIError) -> type[AgentStoreError]:
        message = str(exc.orig)
        if "UNIQUE constraint failed" in message or "PRIMARY KEY" in message:
            return ConflictError
        if "FOREIGN KEY constraint failed" in message:
            return NotFoundError
        if "CHECK constraint failed" in message or "NOT NULL constraint failed" in message:
            return ValidationError
        return StoreUnavailableError


# A transaction-scoped advisory lock on one run's journal. The two-key form's keys never
# collide with the one-key migration lock; the first key says "journal" ("jrnl").
_JOURNAL_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock(
        sa.literal(0x6A72_6E6C, sa.Integer),
        sa.func.hashtext(sa.cast(sa.bindparam("run_id", type_=sa.Uuid()), sa.Text)),
    )
)

# PostgreSQL SQLSTATE classes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_POSTGRES_ERRORS: dict[str, type[AgentStoreError]] = {
    "23505": ConflictError,  # unique_violation
    "23503": NotFoundError,  # foreign_key_violation
    "23514": ValidationError,  # check_violation
    "23502": ValidationError,  # not_null_violation
    "22001": ValidationError,  # string_data_right_truncation
    "22P02": ValidationError,  # invalid_text_representation
    "22021": ValidationError,  # character_not_in_repertoire (NUL bytes)
    "22P05": ValidationError,  # untranslatable_character
}


class PostgresBackend(Backend):
    name = "postgresql"
    migrations_tree = "cloud"
    # Any constant works; it only has to be the same in every process that migrates.
    migration_lock_key = 0x6167_656E_7473  # "agents"

    #: A pooled connection idle for longer than this is pinged before use.
    ping_after_idle_seconds = 5.0

    def create_engine(self, url: URL, **engine_options: Any) -> Engine:
        try:
            defaults = {"isolation_level": "READ COMMITTED"}
            engine = sa.create_engine(
                url, json_serializer=dumps_json, **{**defaults, **engine_options}
            )
        except ModuleNotFoundError as exc:
            raise UnsupportedDatabaseError(
                "PostgreSQL needs the psycopg driver: pip install 'agentstore[postgres]'"
            ) from exc
        # A connection that sat in the pool may have been closed by a server restart, a
        # failover or a proxy's idle timeout; it is pinged before use and replaced if dead.
        # Unlike pool_pre_ping, a connection in steady use is not pinged: that would
        # cost a round trip on every call, the claim loop's included.
        ping_after_idle = self.ping_after_idle_seconds

        @event.listens_for(engine, "checkin")
        def note_idle_since(_dbapi_connection: Any, record: Any) -> None:
            record.info["idle_since"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            idle_since = record.info.get("idle_since")
            if idle_since is None or time.monotonic() - idle_since < ping_after_idle:
                return
            try:
                dbapi_connection.execute("SELECT 1")
                dbapi_connection.rollback()
            except Exception as exc:
                # The pool discards this connection and checks out another.
                raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc

        return engine

    @contextmanager
    def migration_transaction(self, connection: Connection) -> Iterator[None]:
        with connection.begin():
            # Released at commit or rollback, so a crashed upgrade never leaves it held.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.migration_lock_key}
            )
            yield

    @property
    def read_only_options(self) -> dict[str, Any]:
        # READ COMMITTED takes a new snapshot per statement; a multi-statement read (a run
        # snapshot, a page and its meta) needs one snapshot for the whole transaction.
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}

    def clock(self) -> sa.ColumnElement[datetime]:
        # The server's clock, shared by every worker machine (transaction start time).
        return sa.func.now(type_=UTCDateTime())

    def deadline(self) -> sa.ColumnElement[datetime]:
        return sa.func.now(type_=UTCDateTime()) + sa.bindparam("lease", type_=sa.Interval())

    def lease_parameter(self, lease: timedelta) -> Any:
        return lease  # added to the server's clock

    def claimable(self, candidates: sa.Select[Any], key: Any) -> Any:
        # Lock the chosen rows, skipping rows another claimer holds; MATERIALIZED makes
        # the planner run the locking SELECT exactly once, before the UPDATE.
        chosen = (
            candidates.with_for_update(skip_locked=True)
            .cte("claimable")
            .prefix_with("MATERIALIZED")
        )
        return key.in_(sa.select(chosen.c[0]))

    def take_journal_turn(self, connection: Connection, run_ids: Iterable[uuid.UUID]) -> None:
        # An event's id is drawn from a sequence when it is written but seen only when
        # its transaction commits, so two writers to one run could commit out of id
        # order. A lock per run, held until commit, makes them take turns; runs are
        # locked in one order, so that writers to several runs cannot deadlock.
        for run_id in sorted(set(run_ids)):
            connection.execute(_JOURNAL_LOCK, {"run_id": run_id})

    def insert(self, table: Any) -> Any:
        return postgresql.insert(table)

    def contains_text(self, column: Any, pattern: str, escape: str) -> sa.ColumnElement[bool]:
        return column.ilike(pattern, escape=escape)  # type: ignore[no-any-return]

    def plan_for_parameters(self, connection: Connection) -> None:
        # psycopg prepares a statement run five times; PostgreSQL may then switch it to a
        # generic plan. For the three-filter listing at 1M executions that plan sorted
        # every match (50 ms) where the custom one walks an index and stops (2 ms).
        # Parallel workers are off too: they made a backward scan of the all-scopes
        # created_at index look cheaper than the scope's own index (14 ms against 2 ms).
        connection.exec_driver_sql(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
            " set_config('max_parallel_workers_per_gather', '0', true)"
        )

    def bucket_start(self, column: Any, width_seconds: int) -> sa.ColumnElement[int]:
        epoch = sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
        return epoch // width_seconds * width_seconds

    def classify_error(self, exc: sa.exc.DBAPIError) -> type[AgentStoreError]:
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return _POSTGRES_ERRORS.get(sqlstate, StoreUnavailableError)


def backend_for(url: URL) -> Backend:
    """The backend for ``url``'s database; any other database is refused."""
    backend_name = url.get_backend_name()
    if backend_name == "sqlite":
        return SQLiteBackend()
    if backend_name == "postgresql":
        return PostgresBackend()
    raise UnsupportedDatabaseError(
        f"agentstore runs on SQLite and PostgreSQL, not {backend_name!r} ({url!r})"
    )


def create_engine(url: str | URL | None = None, **engine_options: Any) -> Engine:
    """An engine for ``url`` (see ``resolve_url``) with every setting agentstore relies on."""
    resolved = resolve_url(url)
    return backend_for(resolved).create_engine(resolved, **engine_options)
