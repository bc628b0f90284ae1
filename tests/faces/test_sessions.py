"""What agentstore keeps in a PostgreSQL session, directly and through PgBouncer in
transaction pooling mode: directly, a session idle inside a transaction is ended after
``IDLE_IN_TRANSACTION_TIMEOUT`` (a frozen client cannot hold row locks for longer);
through the pooler (``?transaction_pooling=true``) nothing lives in the session: no
prepared statement, no session setting, no LISTEN."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.backends.postgresql import IDLE_IN_TRANSACTION_TIMEOUT
from agentstore.errors import StoreUnavailableError, UnsupportedDatabaseError
from tests.support.databases import PooledDatabases

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)


def setting(store: AgentStore, name: str) -> str:
    with store.engine.connect() as connection:
        return str(connection.exec_driver_sql(f"SHOW {name}").scalar_one())


def test_a_session_gets_the_idle_in_transaction_timeout(db_url: str) -> None:
    with AgentStore.open(db_url) as store:
        assert setting(store, "idle_in_transaction_session_timeout") == "1min"
    assert IDLE_IN_TRANSACTION_TIMEOUT == "60s"
    own = f"{db_url}?options=-c%20idle_in_transaction_session_timeout%3D5s"
    with AgentStore.open(own) as store:  # the URL's own setting wins
        assert setting(store, "idle_in_transaction_session_timeout") == "5s"


def test_a_frozen_transaction_cannot_hold_its_locks(db_url: str) -> None:
    """A unit that stops mid-transaction, holding the run's row lock, is ended by the
    server: another writer gets the row, and the frozen unit's work is not committed."""
    short = f"{db_url}?options=-c%20idle_in_transaction_session_timeout%3D1s"
    waits = f"{db_url}?options=-c%20lock_timeout%3D20s"  # a refusal, not a hang, if held
    with AgentStore.open(short) as frozen, AgentStore.open(waits) as other:
        run = other.runs.create("g", "/r")
        with pytest.raises(StoreUnavailableError), frozen.transaction() as tx:
            tx.tasks.replace_pending(run.id, [TaskDraft("t", "o")])  # locks the run
            other.tasks.replace_pending(run.id, [TaskDraft("u", "o")])  # waits, then runs
            tx.events.add(run.id, "system", "late", "after the freeze")
        assert [t.title for t in other.tasks.list(run.id)] == ["u"]
        assert "late" not in [e.kind for e in other.events.list(run.id)]


@pytest.fixture
def pooled_url(db_url: str, pgbouncer_databases: PooledDatabases) -> Iterator[str]:
    """The test's database through PgBouncer (made on the server by ``db_url``)."""
    yield pgbouncer_databases.through_pooler(db_url)


def test_through_the_pooler_nothing_lives_in_the_session(pooled_url: str) -> None:
    with AgentStore.open(pooled_url) as store:
        run = store.runs.create("g", "/r")
        store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(30)])
        # Several connections, many repeats: a statement prepared on one server session
        # would be missing on another ("does not exist") or taken ("already exists").
        errors: list[BaseException] = []

        def drain(worker: str) -> None:
            try:
                while claimed := store.tasks.claim_next(worker, run_id=run.id):
                    [task] = claimed
                    store.tasks.heartbeat(task.id, task.attempt, timedelta(minutes=1))
                    store.tasks.complete(task.id, "done", attempt=task.attempt)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert {t.status.value for t in store.tasks.list(run.id)} == {"completed"}
        assert store.backend.listener(store.engine.url, ("tasks",)) is None


def test_an_async_store_through_the_pooler(pooled_url: str) -> None:
    import asyncio

    async def main() -> int:
        async with AsyncAgentStore.open(pooled_url) as store:
            run = await store.runs.create("g", "/r")
            for _ in range(12):  # past psycopg's prepare threshold (5)
                await store.runs.get(run.id)
            return len((await store.runs.list()).items)

    assert asyncio.run(main()) == 1


def test_the_pooler_without_the_flag_says_what_to_add(pooled_url: str) -> None:
    plain = make_url(pooled_url).difference_update_query(["transaction_pooling"])
    with AgentStore.open(plain) as store, pytest.raises(UnsupportedDatabaseError) as refused:
        store.runs.list()
    assert "transaction_pooling=true" in str(refused.value)


def test_a_bad_flag_is_refused(db_url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match="transaction_pooling"):
        AgentStore.open(f"{db_url}?transaction_pooling=perhaps")
    with pytest.raises(UnsupportedDatabaseError, match="PostgreSQL"):
        AgentStore.open("sqlite:///x.db?transaction_pooling=true")


def test_the_store_goes_on_after_the_server_ended_a_frozen_unit(db_url: str) -> None:
    """The pool drops the connection the server ended; nothing of the unit committed."""
    short = f"{db_url}?options=-c%20idle_in_transaction_session_timeout%3D1s"
    with AgentStore.open(short) as store:
        with pytest.raises(StoreUnavailableError), store.transaction() as tx:
            tx.runs.create("frozen", "/r")
            time.sleep(1.5)
        assert store.runs.list().items == []
        assert [r.goal for r in (store.runs.create("next", "/r"),)] == ["next"]
