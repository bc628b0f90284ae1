"""Engine setup: every dialect setting agentstore relies on comes from one function."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import agentstore
from agentstore import AgentStore, AsyncAgentStore
from agentstore.backends import resolve_url
from agentstore.errors import StoreUnavailableError, UnsupportedDatabaseError
from agentstore.models import AgentState
from tests.support.postgres import kill_connections


def test_sqlite_connections_use_wal_foreign_keys_busy_timeout_normal_sync_and_checkpoints(
    tmp_path: Path,
) -> None:
    engine = agentstore.create_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in (
                "journal_mode",
                "foreign_keys",
                "busy_timeout",
                "synchronous",
                "wal_autocheckpoint",
            )
        }
    engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
        "wal_autocheckpoint": 4000,
    }


def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_first_statement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock.db"
    engine = agentstore.create_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with engine.begin() as connection:
        connection.exec_driver_sql("SELECT 1")  # no write yet, but BEGIN IMMEDIATE ran
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again once the transaction ends
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_a_sqlite_write_that_outwaits_the_busy_timeout_is_one_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write lock is taken by the transaction's BEGIN IMMEDIATE (sent on a driver
    cursor, not as a SQLAlchemy statement): a wait for it that times out is still
    ``StoreUnavailableError``, retryable, on both faces."""
    monkeypatch.setattr(agentstore.backends.sqlite, "BUSY_TIMEOUT_MS", 50)
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    agentstore.migrate(url)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection

    async def create_async() -> None:
        async with AsyncAgentStore.open(url) as store:
            await store.runs.create("waits", "/r")

    with AgentStore.open(url) as store:
        with pytest.raises(StoreUnavailableError, match="locked") as caught:
            store.runs.create("waits", "/r")
        assert caught.value.retryable
        with pytest.raises(StoreUnavailableError, match="locked"):
            asyncio.run(create_async())
        holder.execute("ROLLBACK")
        assert store.runs.create("after", "/r").goal == "after"
    holder.close()


def test_sqlite_older_than_3_35_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(UnsupportedDatabaseError, match=r"3\.34\.1 is too old"):
        agentstore.create_engine(f"sqlite:///{tmp_path / 'old.db'}")


def test_postgres_uses_read_committed(postgresql_databases: object) -> None:
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]
    engine = agentstore.create_engine(url)
    with engine.connect() as connection:
        isolation = connection.exec_driver_sql("SHOW transaction_isolation").scalar()
    assert isolation == "read committed"
    engine.dispose()


def test_postgres_writes_keep_the_isolation_level_of_a_hosts_engine(
    postgresql_databases: object,
) -> None:
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]
    engine = sa.create_engine(url, isolation_level="SERIALIZABLE")
    store = AgentStore(engine)  # gets agentstore's hooks: its own BEGIN among them
    with engine.connect() as connection:
        isolation = connection.exec_driver_sql("SHOW transaction_isolation").scalar()
        assert connection.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
    assert isolation == "serializable"
    store.close()
    engine.dispose()


def test_a_dead_idle_postgres_connection_is_replaced_unseen(
    postgresql_databases: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agentstore.backends.postgresql, "PING_AFTER_IDLE_SECONDS", 0.0)
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]
    with AgentStore.open(url) as store:
        run = store.runs.create("survive a restart", "/r")
        assert kill_connections(url) == 1  # the store's pooled connection
        assert store.runs.get(run.id) == run  # pinged, found dead, replaced


def test_a_dead_idle_postgres_connection_is_replaced_unseen_by_the_async_face(
    postgresql_databases: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same ping (the dialect's own do_ping) on psycopg's async connection."""
    monkeypatch.setattr(agentstore.backends.postgresql, "PING_AFTER_IDLE_SECONDS", 0.0)
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]

    async def main() -> None:
        async with AsyncAgentStore.open(url) as store:
            run = await store.runs.create("survive a restart", "/r")
            assert kill_connections(url) == 1
            assert await store.runs.get(run.id) == run

    asyncio.run(main())


def test_a_postgres_connection_in_steady_use_is_not_pinged(postgresql_databases: object) -> None:
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]
    with AgentStore.open(url) as store:
        run = store.runs.create("lose the server", "/r")
        assert kill_connections(url) == 1
        # Used a moment ago, so not pinged: the loss surfaces as one typed error...
        with pytest.raises(StoreUnavailableError):
            store.runs.get(run.id)
        assert store.runs.get(run.id) == run  # ...and the pool has replaced the connection


def test_a_postgres_connection_lost_in_steady_use_is_one_typed_error_on_the_async_face(
    postgresql_databases: object,
) -> None:
    """As above, on psycopg's async connection: for a read, the loss is met by the
    transaction's BEGIN (agentstore's own, sent on a driver cursor)."""
    url = postgresql_databases.migrated()  # type: ignore[attr-defined]

    async def main() -> None:
        async with AsyncAgentStore.open(url) as store:
            run = await store.runs.create("lose the server", "/r")
            assert kill_connections(url) == 1
            with pytest.raises(StoreUnavailableError):
                await store.runs.get(run.id)
            assert await store.runs.get(run.id) == run

    asyncio.run(main())


def test_a_bare_postgresql_url_gets_the_psycopg_driver() -> None:
    assert resolve_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_the_default_url_is_the_embedded_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTSTORE_DATABASE_URL", raising=False)
    assert resolve_url().render_as_string() == "sqlite:///agentstore.db"
    monkeypatch.setenv("AGENTSTORE_DATABASE_URL", "sqlite:///elsewhere.db")
    assert resolve_url().database == "elsewhere.db"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_other_databases_are_refused_clearly(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError):
        agentstore.create_engine(url)


def test_migrate_refuses_an_unsupported_url_before_touching_anything() -> None:
    with pytest.raises(UnsupportedDatabaseError):
        agentstore.migrate("mysql://u@h/db")


def test_foreign_keys_are_enforced(db_url: str) -> None:
    engine = agentstore.create_engine(db_url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.insert(AgentState).values(
                run_id=uuid.uuid4(),
                role="strategy",
                turns=0,
                rotation_count=0,
                updated_at=datetime.now(UTC),
            )
        )
    engine.dispose()
