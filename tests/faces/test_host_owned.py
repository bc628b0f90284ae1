"""A host's own transaction: ``store.on(connection)`` binds the repositories to a
connection the host opened. agentstore neither begins nor commits it: the host commits
and our writes are there, rolls back and none are."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.errors import NotFoundError, UnsupportedDatabaseError, ValidationError


def kinds(store: AgentStore, run_id: object) -> list[str]:
    return [event.kind for event in store.events.list(run_id)]  # type: ignore[arg-type]


@pytest.mark.parametrize("host_commits", [True, False])
def test_our_writes_follow_the_hosts_transaction(
    sync_store: AgentStore, host_commits: bool
) -> None:
    run = sync_store.runs.create("host", "/r")
    with sync_store.engine.connect() as connection, connection.begin() as transaction:
        tx = sync_store.on(connection)
        tx.events.add(run.id, "host", "ours", "written in the host's transaction")
        tx.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
        connection.exec_driver_sql("CREATE TABLE host_table (x INTEGER)")  # the host's own
        with pytest.raises(NotFoundError):  # a failed call is undone alone...
            tx.events.add(uuid.uuid4(), "h", "k", "refused")
        if host_commits:  # ...and the host's transaction is still good
            transaction.commit()
        else:
            transaction.rollback()
    assert ("ours" in kinds(sync_store, run.id)) is host_commits
    assert (len(sync_store.tasks.list(run.id)) == 1) is host_commits
    assert sa.inspect(sync_store.engine).has_table("host_table") is host_commits


@pytest.mark.parametrize("host_commits", [True, False])
def test_our_async_writes_follow_the_hosts_transaction(db_url: str, host_commits: bool) -> None:
    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            run = await store.runs.create("host", "/r")
            async with store.engine.connect() as connection:
                transaction = await connection.begin()
                tx = store.on(connection)
                await tx.events.add(run.id, "host", "ours", "in the host's transaction")
                await tx.runs.increment_cycle(run.id)
                await (transaction.commit() if host_commits else transaction.rollback())
            events = await store.events.list(run.id)
            assert ("ours" in [e.kind for e in events]) is host_commits
            assert (await store.runs.get(run.id)).cycle_count == (1 if host_commits else 0)

    asyncio.run(main())


def test_the_stores_calls_commit_after_a_host_set_an_isolation_level_of_its_own(
    sync_store: AgentStore,
) -> None:
    """SQLAlchemy resets a host's isolation level when the connection goes back to the
    pool; the store's calls that take the connection next still commit. (On PostgreSQL
    the reset took the driver out of autocommit: the claim below, one statement sent
    without a transaction, was then left in the driver's and rolled back.)"""
    run = sync_store.runs.create("host", "/r")
    with sync_store.engine.connect() as connection:
        connection.execution_options(isolation_level="SERIALIZABLE")
        with connection.begin():
            sync_store.on(connection).events.add(run.id, "host", "ours", "serializable")
    sync_store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
    [held] = sync_store.tasks.claim_next("w", run_id=run.id)  # on the host's connection
    sync_store.tasks.complete(held.id, "done", attempt=held.attempt)
    assert [task.status for task in sync_store.tasks.list(run.id)] == ["completed"]
    assert kinds(sync_store, run.id) == ["run_created", "ours", "task_completed"]


def test_a_connection_without_agentstores_settings_is_refused(db_url: str) -> None:
    plain = sa.create_engine(db_url)
    with (
        plain.connect() as connection,
        AgentStore.open(db_url) as store,
        pytest.raises(UnsupportedDatabaseError, match="settings"),
    ):
        store.on(connection)
    plain.dispose()


def test_on_takes_a_connection(sync_store: AgentStore) -> None:
    with pytest.raises(ValidationError, match="Connection"):
        sync_store.on(sync_store.engine)  # type: ignore[arg-type]
