"""Engines: every setting agentstore relies on reaches every connection, on the sync and
the asyncio driver, and on an engine the host made itself (or the engine is refused)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import agentstore
from agentstore import AgentStore, AsyncAgentStore, ExecutionQuery, TaskDraft
from agentstore.errors import NotFoundError, UnsupportedDatabaseError

PRAGMAS = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous", "wal_autocheckpoint")


def async_url(db_url: str) -> str:
    return (
        agentstore.backends.backend_for(sa.make_url(db_url))
        .async_url(sa.make_url(db_url))
        .render_as_string(hide_password=False)
    )


def test_aiosqlite_connections_get_the_same_pragmas_and_lower(tmp_path: Path) -> None:
    async def main() -> tuple[Any, ...]:
        engine = agentstore.create_async_engine(f"sqlite:///{tmp_path / 'a.db'}")
        async with engine.connect() as connection:
            pragmas = [
                (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar() for name in PRAGMAS
            ]
            lowered = (await connection.exec_driver_sql("SELECT agentstore_lower('ÄÖ')")).scalar()
        await engine.dispose()
        return (*pragmas, lowered)

    assert asyncio.run(main()) == ("wal", 1, 30000, 1, 4000, "äö")


def test_an_aiosqlite_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE really runs on aiosqlite (sent through the driver-neutral cursor)."""
    path = tmp_path / "lock.db"
    agentstore.migrate(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)

    async def main() -> None:
        async with AsyncAgentStore.open(f"sqlite:///{path}") as store, store.transaction():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")

    asyncio.run(main())
    other.execute("BEGIN IMMEDIATE")  # free once the unit ended
    other.execute("ROLLBACK")
    other.close()


def check_a_hosts_engine(store: Any, run_async: Any) -> None:
    """Foreign keys, text search and JSON on a store over an engine the host made."""
    with pytest.raises(NotFoundError):
        run_async(store.agents.save("00000000-0000-0000-0000-000000000000", "strategy"))
    run = run_async(store.runs.create("host engine", "/r"))
    run_async(store.checkpoints.add(run.id, "running", {"step": 1, "text": "ä"}))
    checkpoint = run_async(store.checkpoints.latest(run.id))
    assert checkpoint.payload == {"step": 1, "text": "ä"}  # a JSON object, not a string
    run_async(store.executions.create("s", "print('ÜBER')"))
    page = run_async(store.executions.list("s", ExecutionQuery(code_contains="über")))
    assert len(page.items) == 1  # the Unicode-aware search function is there


def test_a_hosts_own_sync_engine_gets_agentstores_settings(db_url: str) -> None:
    engine = sa.create_engine(db_url)  # plain: no pragmas, no BEGIN IMMEDIATE, no function
    store = AgentStore(engine)
    check_a_hosts_engine(store, lambda value: value)
    if store.backend.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_a_hosts_own_async_engine_gets_agentstores_settings(db_url: str) -> None:
    async def main() -> None:
        store = AsyncAgentStore(create_async_engine(async_url(db_url)))
        loop = asyncio.get_running_loop()

        def run_async(awaitable: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(awaitable, loop).result(60)

        await asyncio.to_thread(check_a_hosts_engine, store, run_async)
        if store.backend.name == "sqlite":  # the calls ran on a twin: the host's own engine
            async with store.engine.connect() as connection:
                assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                lowered = await connection.exec_driver_sql("SELECT agentstore_lower('Ä')")
                assert lowered.scalar() == "ä"
        await store.close()

    asyncio.run(main())


def test_an_engine_configured_twice_gets_its_hooks_once(db_url: str) -> None:
    """(Twice, SQLite's BEGIN would fail: "cannot start a transaction within a transaction".)"""
    engine = agentstore.create_engine(db_url)
    AgentStore(engine)
    store = AgentStore(engine)
    with store.transaction() as tx:
        tx.runs.create("configured once", "/r")
    assert len(store.runs.list().items) == 1
    engine.dispose()


@pytest.mark.parametrize(
    "make",
    [
        lambda url: sa.create_engine(url, isolation_level="AUTOCOMMIT"),
        lambda url: create_async_engine(async_url(url)),
    ],
    ids=["autocommit", "async engine"],
)
def test_an_engine_agentstore_cannot_use_is_refused(db_url: str, make: Any) -> None:
    engine = make(db_url)
    with pytest.raises(UnsupportedDatabaseError):
        AgentStore(engine)


def test_a_sync_engine_is_refused_by_the_async_store(db_url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match="AsyncEngine"):
        AsyncAgentStore(sa.create_engine(db_url))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db", "sqlite+pysqlcipher:///x"],
)
def test_other_drivers_are_refused_clearly(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match="driver"):
        agentstore.create_engine(url)


def test_an_async_store_takes_a_plain_url_and_gets_the_async_driver(db_url: str) -> None:
    async def main() -> str:
        async with AsyncAgentStore.open(db_url) as store:
            await store.runs.list()
            return str(store.engine.dialect.driver)

    assert asyncio.run(main()) in ("aiosqlite", "psycopg_async", "psycopg")


def test_the_async_face_runs_its_calls_in_its_threads_on_a_sqlite_file(db_url: str) -> None:
    """On a SQLite file a call is one hop to a thread running sqlite3 (aiosqlite would
    hop for each cursor, execute, fetch and close); on PostgreSQL it runs on psycopg's
    async connection through the greenlet bridge, in the event loop's thread."""
    threads: set[str] = set()

    async def main() -> tuple[str, str]:
        async with AsyncAgentStore.open(db_url) as store:
            sa.event.listen(
                store.calls_engine,
                "before_cursor_execute",
                lambda *_: threads.add(threading.current_thread().name),
            )
            await store.runs.create("where calls run", "/r")
            await store.runs.list()
            return store.calls_engine.dialect.driver, threading.current_thread().name

    driver, loop_thread = asyncio.run(main())
    if db_url.startswith("sqlite"):
        assert driver == "pysqlite"
        assert threads and all(name.startswith("agentstore-call") for name in threads)
    else:
        assert driver in ("psycopg_async", "psycopg")
        assert threads == {loop_thread}


def test_an_in_memory_sqlite_database_keeps_its_calls_on_the_async_engine() -> None:
    """A twin engine would open another, empty, database: no twin."""
    engine = agentstore.create_async_engine("sqlite+aiosqlite://")
    assert agentstore.backends.threaded_twin(engine) is None
    asyncio.run(engine.dispose())


def test_a_call_no_longer_awaited_still_ends_in_its_thread(tmp_path: Path) -> None:
    """A write cancelled while its thread waits for SQLite's write lock ends there all
    the same (here: committed once the lock is free), as a write whose reply was lost;
    ``close`` waits for it."""
    path = tmp_path / "cancel.db"
    agentstore.migrate(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection

    async def main() -> None:
        store = AsyncAgentStore.open(f"sqlite:///{path}")
        creating = asyncio.create_task(store.runs.create("cancelled", "/r"))
        await asyncio.sleep(0.3)  # the call is in its thread, waiting for the lock
        creating.cancel()
        with pytest.raises(asyncio.CancelledError):
            await creating
        holder.execute("ROLLBACK")
        await store.close()

    asyncio.run(main())
    holder.close()
    with AgentStore.open(f"sqlite:///{path}") as check:
        assert [run.goal for run in check.runs.list().items] == ["cancelled"]


def test_the_async_store_migrates(empty_db_url: str) -> None:
    async def main() -> None:
        async with AsyncAgentStore.open(empty_db_url) as store:
            await store.migrate()
            run = await store.runs.create("migrated from asyncio", "/r")
            await store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])

    asyncio.run(main())
    current, heads = agentstore.schema.revisions(empty_db_url)
    assert current == heads
