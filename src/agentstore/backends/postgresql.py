"""PostgreSQL: many workers on many machines share one server, and its clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine

from agentstore.backends.base import (
    ONE_STATEMENT,
    READ_ONLY,
    TRANSACTION_POOLING,
    Backend,
    first_line,
    isolation_level,
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

if TYPE_CHECKING:
    from agentstore.backends.listen import Listener

#: A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 5.0
#: A session idle inside a transaction for longer than this is ended by the server, its
#: transaction rolled back: a client frozen mid-transaction (SIGSTOP, a debugger, a long
#: pause) cannot hold row locks for longer. A URL's own ``options`` may set another.
IDLE_IN_TRANSACTION_TIMEOUT = "60s"
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) that say
# the input was wrong, or the row is missing or taken.
_REFUSALS: dict[str, type[AgentStoreError]] = {
    "23505": ConflictError,  # unique_violation
    "23503": NotFoundError,  # foreign_key_violation
    "23514": ValidationError,  # check_violation
    "23502": ValidationError,  # not_null_violation
    "22001": ValidationError,  # string_data_right_truncation
    "22P02": ValidationError,  # invalid_text_representation
    "22021": ValidationError,  # character_not_in_repertoire (NUL bytes)
    "22P05": ValidationError,  # untranslatable_character
    "22003": ValidationError,  # numeric_value_out_of_range
    "22008": ValidationError,  # datetime_field_overflow
}
_NOT_MIGRATED = {"42P01", "42703"}  # undefined_table, undefined_column
# Failures that may pass: connection exceptions, transaction rollbacks (serialization
# failure, deadlock), insufficient resources, operator intervention (statement timeout,
# shutdown, restart), a lock that could not be had.
_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_TRANSIENT = {"55P03", "55006"}


def _begin_statements(engine: Engine) -> tuple[str, str]:
    """The BEGIN of a transaction that writes, at the engine's isolation level (READ
    COMMITTED unless its creator chose another), and of a read-only one: REPEATABLE
    READ, since READ COMMITTED takes a new snapshot per statement, and a read of several
    statements (a run snapshot, a page and its meta) must see one."""
    writes = f"BEGIN ISOLATION LEVEL {isolation_level(engine) or 'READ COMMITTED'}"
    return writes, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def _begin(connection: Connection, statements: tuple[str, str]) -> None:
    """A ``begin`` hook: every transaction's BEGIN, none for a one-statement call.
    Where a host has taken the driver out of autocommit (an isolation level of its
    own), the driver begins its transactions itself."""
    options = connection.get_execution_options()
    if options.get(ONE_STATEMENT) or not connection.connection.dbapi_connection.autocommit:  # type: ignore[union-attr]
        return
    on_driver_cursor(connection, statements[1] if options.get(READ_ONLY) else statements[0])


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def transaction_pooling(url: URL) -> bool:
    """Whether ``url`` says (``?transaction_pooling=true``) it is a pooler in
    transaction mode. Raises ``UnsupportedDatabaseError`` for a value not a flag."""
    value = url.query.get(TRANSACTION_POOLING, "false")
    flag = _FLAGS.get(value.lower()) if isinstance(value, str) else None
    if flag is None:
        raise UnsupportedDatabaseError(
            f"{TRANSACTION_POOLING} must be true or false, not {value!r}"
        )
    return flag


def session_parameters(parameters: dict[str, Any], *, pooled: bool) -> None:
    """Make the driver's connection parameters (from the URL) agentstore's, in place.

    Behind a transaction pooler nothing may live in the server session: psycopg then
    prepares no statement on the server (the next transaction may run on a session
    that lacks it, or has another client's of the same name), and no session setting
    is sent (PgBouncer refuses startup options: set its ``idle_transaction_timeout``).
    Otherwise the session gets the idle-in-transaction timeout."""
    parameters.pop(TRANSACTION_POOLING, None)
    if pooled:
        parameters["prepare_threshold"] = None
        return
    timeout = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"
    theirs = parameters.get("options")
    parameters["options"] = f"{timeout} {theirs}" if theirs else timeout  # the last -c wins


class PostgresBackend(Backend):
    name = "postgresql"
    migrations_tree = "cloud"
    sync_driver = "psycopg"
    async_driver = "psycopg_async"
    sync_url_driver = async_url_driver = "psycopg"  # SQLAlchemy picks the async variant
    engine_defaults = {"isolation_level": "READ COMMITTED"}  # noqa: RUF012 - read-only
    data_modifying_ctes = True
    schemas = True
    # Any constant works; it only has to be the same in every process that migrates.
    migration_lock_key = 0x6167_656E_7473  # "agents"

    def configure(self, engine: Engine) -> None:
        if self.is_configured(engine):
            return
        # A connection that sat in the pool may have been closed by a server restart, a
        # failover or a proxy's idle timeout; it is pinged before use and replaced if
        # dead. Unlike pool_pre_ping, a connection in steady use is not pinged: that
        # would cost a round trip on every call, the claim loop's included.
        dialect = engine.dialect
        pooled = transaction_pooling(engine.url)

        def set_session_parameters(_dialect: Any, _record: Any, _args: Any, params: Any) -> None:
            session_parameters(params, pooled=pooled)

        def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            idle_since = record.info.get("idle_since")
            if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
                return
            try:
                dialect.do_ping(dbapi_connection)  # the driver's own ping, sync or async
            except Exception as exc:
                # The pool discards this connection and checks out another.
                raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc

        def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            ping_if_idle(dbapi_connection, record, proxy)
            # Once per new connection, and again after a host set an isolation level of
            # its own on it (which SQLAlchemy resets at checkin, autocommit off).
            if not dbapi_connection.autocommit:
                dbapi_connection.autocommit = True

        # Transactions begin with a BEGIN of agentstore's (``_begin``), on connections
        # the driver keeps in autocommit: a call then changes no setting of the driver's
        # per call (on psycopg's async connection each change, and each reset at
        # checkin, is awaited), and a one-statement call is sent without one.
        begin = _begin_statements(engine)
        sa.event.listen(engine, "do_connect", set_session_parameters)
        sa.event.listen(engine, "connect", self.mark_configured)
        sa.event.listen(engine, "checkin", _note_idle_since)
        sa.event.listen(engine, "checkout", checkout)
        sa.event.listen(engine, "begin", lambda connection: _begin(connection, begin))
        engine.dispose()  # connections opened before lack the hooks above

    @contextmanager
    def migration_transaction(self, connection: Connection) -> Iterator[None]:
        with connection.begin():
            # Released at commit or rollback, so a crashed upgrade never leaves it held.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.migration_lock_key}
            )
            yield

    def enter_schema(self, connection: Connection, schema: str | None) -> None:
        if schema is None:
            return
        quoted = connection.dialect.identifier_preparer.quote_schema(schema)
        exists = sa.text("SELECT FROM pg_namespace WHERE nspname = :schema")
        if connection.execute(exists, {"schema": schema}).first() is None:
            # Only if absent: CREATE SCHEMA IF NOT EXISTS needs the right to create one.
            connection.exec_driver_sql(f"CREATE SCHEMA {quoted}")
        # The migrations name no schema; this transaction's search path finds it alone.
        connection.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")

    def listener(self, url: URL, channels: tuple[str, ...]) -> Listener | None:
        from agentstore.backends.listen import Listener  # psycopg: only where it is used

        # The connection arguments SQLAlchemy's psycopg dialect would use for this URL.
        sync_url = self.sync_url(url)
        if transaction_pooling(url):
            return None  # LISTEN needs a server session of its own: callers poll
        _, connect_args = sync_url.get_dialect()().create_connect_args(sync_url)
        return Listener(connect_args, channels)

    def transaction_aborted(self, connection: Connection) -> bool:
        # psycopg (sync, or under SQLAlchemy's async adapter) knows without a round trip.
        driver_connection: Any = connection.connection.driver_connection
        status = driver_connection.info.transaction_status
        return bool(status == status.INERROR)

    def clock(self) -> sa.ColumnElement[datetime]:
        # The server's clock, shared by every worker machine (transaction start time).
        return sa.func.now(type_=UTCDateTime())

    def deadline(self, name: str = "lease") -> sa.ColumnElement[datetime]:
        return sa.func.now(type_=UTCDateTime()) + sa.bindparam(name, type_=sa.Interval())

    def expiry(self, name: str = "lease") -> sa.ColumnElement[datetime]:
        # now() is the transaction's start; clock_timestamp() the moment of the write.
        clock = sa.func.clock_timestamp(type_=UTCDateTime())
        return clock + sa.bindparam(name, type_=sa.Interval())

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

    def transaction_id(self) -> sa.ColumnElement[int]:
        # xid8: 64 bits, never wraps around; as text, then bigint (no direct cast).
        return sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)

    def settled_below(self) -> sa.ColumnElement[int]:
        # The oldest transaction still running when this one's snapshot was taken.
        xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
        return sa.cast(sa.cast(xmin, sa.Text), sa.BigInteger)

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

    def outcome_unknown(self, exc: sa.exc.SQLAlchemyError) -> bool:
        # The server answered with an error: it did not commit. No answer (the connection
        # dropped, a timeout): the COMMIT may have been applied before the reply was lost.
        if not isinstance(exc, sa.exc.DBAPIError):
            return False
        return exc.connection_invalidated or not getattr(exc.orig, "sqlstate", None)

    def classify_driver_error(self, exc: sa.exc.DBAPIError) -> AgentStoreError:
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        detail = first_line(exc.orig) if exc.orig is not None else first_line(exc)
        if refusal := _REFUSALS.get(sqlstate):
            return refusal(detail)
        if sqlstate in _NOT_MIGRATED:
            return NotMigratedError(
                f"the database does not have agentstore's schema ({detail}): "
                "run `agentstore db upgrade`"
            )
        if "unsupported startup parameter" in detail:  # PgBouncer, refusing our settings
            return UnsupportedDatabaseError(
                f"{detail}: for a pooler in transaction mode, add "
                f"?{TRANSACTION_POOLING}=true to the URL"
            )
        refused_login = "authentication failed" in detail or "does not exist" in detail
        transient = (
            exc.connection_invalidated
            or (not sqlstate and not refused_login)  # no answer: refused, reset, timed out
            or sqlstate.startswith(_TRANSIENT_CLASSES)
            or sqlstate in _TRANSIENT
        )
        return StoreUnavailableError(detail, retryable=transient)
