"""A connection lost mid-call: ``StoreUnavailableError.maybe_committed`` says whether the
write may have committed (the connection dropped while it was committing, or while a
single-statement write ran) or surely did not (it dropped before). And a worker whose
claim committed but whose reply was lost re-finds the tasks it holds and works them."""

from __future__ import annotations

import asyncio
import pickle
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from agentstore import AgentStore, AsyncAgentStore, TaskDraft, TaskStatus
from agentstore.errors import StoreUnavailableError
from agentstore.worker import Worker
from tests.support.postgres import kill_connections

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)


def test_a_connection_lost_before_commit_committed_nothing(db_url: str) -> None:
    with AgentStore.open(db_url) as store:
        run = store.runs.create("g", "/r")
        with pytest.raises(StoreUnavailableError) as lost, store.transaction() as tx:
            tx.events.add(run.id, "w", "note", "first")
            kill_connections(db_url)
            tx.events.add(run.id, "w", "note", "second")
        assert lost.value.retryable and not lost.value.maybe_committed
        assert [e.kind for e in store.events.list(run.id)] == ["run_created"]


def test_a_connection_lost_at_commit_may_have_committed(db_url: str) -> None:
    with AgentStore.open(db_url) as store:
        run = store.runs.create("g", "/r")
        with pytest.raises(StoreUnavailableError) as lost, store.transaction() as tx:
            tx.events.add(run.id, "w", "note", "only")
            kill_connections(db_url)  # the COMMIT goes out on a dead connection
        assert lost.value.retryable and lost.value.maybe_committed
        copy = pickle.loads(pickle.dumps(lost.value))
        assert (copy.retryable, copy.maybe_committed) == (True, True)


def test_a_single_statement_write_on_a_lost_connection_may_have_committed(db_url: str) -> None:
    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            run = await store.runs.create("g", "/r")
            await store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
            kill_connections(db_url)
            with pytest.raises(StoreUnavailableError) as lost:
                await store.tasks.claim_next("w", run_id=run.id)  # one statement, autocommit
            assert lost.value.maybe_committed
            await store.runs.get(run.id)  # a new pooled connection (the pool was emptied)
            kill_connections(db_url)
            with pytest.raises(StoreUnavailableError) as read:
                await store.runs.get(run.id)
            assert read.value.retryable and not read.value.maybe_committed

    asyncio.run(main())


class LoseReplies:
    """Drops the connection right after the database ran a claim (``times`` claims),
    before its reply is read: the claim committed, the caller sees a lost connection."""

    def __init__(self, engine: sa.Engine, times: int) -> None:
        self.left = times
        sa.event.listen(engine, "after_cursor_execute", self.after)

    def after(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.left and "claimed AS (" in statement:
            self.left -= 1
            connection.connection.dbapi_connection.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_worker_works_the_tasks_of_a_claim_whose_reply_was_lost(db_url: str, face: str) -> None:
    done: Counter[str] = Counter()

    def handler(context: Any) -> str:
        done[context.task.title] += 1
        return "done"

    options = {"lease": timedelta(minutes=5), "poll_interval": timedelta(milliseconds=50)}
    with AgentStore.open(db_url) as setup:
        run = setup.runs.create("g", "/r", "running")
        setup.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(20)])
    if face == "sync":
        with AgentStore.open(db_url) as store:
            faults = LoseReplies(store.engine, times=3)
            counters = Worker(store, handler, run_id=run.id, concurrency=2, batch=2, **options).run(
                until_idle=True
            )
    else:

        async def main() -> Any:
            async with AsyncAgentStore.open(db_url) as store:
                global_faults.append(LoseReplies(store.calls_engine, times=3))
                worker = Worker(store, handler, run_id=run.id, concurrency=2, batch=2, **options)
                return await worker.run_async(until_idle=True)

        global_faults: list[LoseReplies] = []
        counters = asyncio.run(main())
        faults = global_faults[0]
    assert faults.left == 0  # every fault was injected
    assert done == Counter({f"t{n}": 1 for n in range(20)})  # each task worked once
    assert counters.completed == 20
    with AgentStore.open(db_url) as check:
        tasks = check.tasks.list(run.id)
        assert {t.status for t in tasks} == {TaskStatus.COMPLETED}
        assert {t.attempt for t in tasks} == {1}  # none waited for a rescue
