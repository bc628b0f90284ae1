"""SQLite takes one write transaction at a time. A face's writers wait for their turn on
a lock in the process, not inside the database holding a pooled connection each: with a
pool of two and one connection held by a unit, twelve writers still all get through once
the unit ends (with no queue, eleven of them would wait for a connection past the pool's
one-second timeout)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import agentstore
from agentstore import AgentStore, AsyncAgentStore

WRITERS = 12
POOL = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 1}
HOLD_SECONDS = 2.5  # longer than the pool timeout


def test_sync_writers_queue_in_the_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one-writer.db'}"
    agentstore.migrate(url)
    errors: list[BaseException] = []
    with AgentStore(agentstore.create_engine(url, **POOL)) as store:

        def write(n: int) -> None:
            try:
                store.runs.create(f"writer {n}", "/w")
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)

        with store.transaction() as tx:  # holds a connection and the write lock
            tx.runs.create("unit", "/u")
            threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
            for thread in threads:
                thread.start()
            time.sleep(HOLD_SECONDS)
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.runs.list().items) == WRITERS + 1


def test_async_writers_queue_in_the_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one-writer.db'}"
    agentstore.migrate(url)

    async def main() -> int:
        async with AsyncAgentStore(agentstore.create_async_engine(url, **POOL)) as store:
            async with store.transaction() as tx:
                await tx.runs.create("unit", "/u")
                writers = [
                    asyncio.create_task(store.runs.create(f"writer {n}", "/w"))
                    for n in range(WRITERS)
                ]
                await asyncio.sleep(HOLD_SECONDS)
            await asyncio.gather(*writers)
            return len((await store.runs.list()).items)

    assert asyncio.run(main()) == WRITERS + 1
