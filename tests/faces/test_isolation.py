"""Units belong to whoever opened them: an asyncio task or a thread. Another task's or
thread's writes never join them, and a unit rolled back never takes another's writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agentstore import AgentStore, AsyncAgentStore
from agentstore.errors import ValidationError


def run_async(db_url: str, test: Callable[[AsyncAgentStore], Awaitable[None]]) -> None:
    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            await test(store)

    asyncio.run(main())


async def messages(store: AsyncAgentStore, run_id: Any) -> list[str]:
    events = await store.events.list(run_id)
    return sorted(event.message for event in events if event.kind != "run_created")


def test_a_task_rolling_back_never_takes_another_tasks_writes(db_url: str) -> None:
    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")
        a_wrote = asyncio.Event()

        async def task_a() -> None:
            with pytest.raises(RuntimeError):
                async with store.transaction() as tx:
                    await tx.events.add(run.id, "a", "k", "a in its unit")
                    a_wrote.set()
                    await asyncio.sleep(0.2)  # B writes meanwhile
                    raise RuntimeError("A rolls back")

        async def task_b() -> None:
            await a_wrote.wait()
            await store.events.add(run.id, "b", "k", "b on its own")  # its own transaction
            async with store.transaction() as tx:
                await tx.events.add(run.id, "b", "k", "b in its unit")

        await asyncio.gather(task_a(), task_b())
        assert await messages(store, run.id) == ["b in its unit", "b on its own"]

    run_async(db_url, test)


def test_two_tasks_units_commit_and_roll_back_apart(db_url: str) -> None:
    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")

        async def unit(name: str, fail: bool) -> None:
            try:
                async with store.transaction() as tx:
                    for n in range(5):
                        await tx.events.add(run.id, name, "k", f"{name} {n}")
                        await asyncio.sleep(0)
                    if fail:
                        raise RuntimeError(name)
            except RuntimeError:
                pass

        await asyncio.gather(unit("kept", False), unit("dropped", True))
        assert await messages(store, run.id) == [f"kept {n}" for n in range(5)]

    run_async(db_url, test)


def test_a_task_started_inside_a_unit_is_not_in_it(db_url: str) -> None:
    """A task created in the block copies its context, not its transaction."""

    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.events.add(run.id, "parent", "k", "parent")
                child = asyncio.create_task(store.events.add(run.id, "child", "k", "child"))
                await asyncio.sleep(0.2)
                raise RuntimeError("parent rolls back")
        await child
        assert await messages(store, run.id) == ["child"]

    run_async(db_url, test)


def test_a_write_on_the_async_store_beside_its_own_unit_is_refused(db_url: str) -> None:
    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")
        async with store.transaction() as tx:
            await tx.events.add(run.id, "s", "k", "in the unit")
            with pytest.raises(ValidationError, match="through the unit"):
                await store.events.add(run.id, "s", "k", "beside it")
            with pytest.raises(ValidationError, match="through the unit"):
                async with store.transaction():
                    pass  # a second unit would wait for the first
        assert await messages(store, run.id) == ["in the unit"]

    run_async(db_url, test)


def test_tasks_sharing_one_unit_take_turns(db_url: str) -> None:
    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")
        async with store.transaction() as tx:
            await asyncio.gather(
                *(tx.events.add(run.id, "s", "k", f"event {n:02}") for n in range(20))
            )
        assert await messages(store, run.id) == [f"event {n:02}" for n in range(20)]

    run_async(db_url, test)


def test_a_cancelled_task_rolls_its_unit_back(db_url: str) -> None:
    async def test(store: AsyncAgentStore) -> None:
        run = await store.runs.create("isolation", "/r")
        started = asyncio.Event()

        async def cancelled() -> None:
            async with store.transaction() as tx:
                await tx.events.add(run.id, "s", "k", "never committed")
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(cancelled())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.events.add(run.id, "s", "k", "the store goes on")
        assert await messages(store, run.id) == ["the store goes on"]

    run_async(db_url, test)


def test_a_thread_rolling_back_never_takes_another_threads_writes(
    sync_store: AgentStore,
) -> None:
    run = sync_store.runs.create("isolation", "/r")
    a_wrote = threading.Event()
    errors: list[BaseException] = []

    def thread_a() -> None:
        try:
            with sync_store.transaction() as tx:
                tx.events.add(run.id, "a", "k", "a in its unit")
                a_wrote.set()
                threading.Event().wait(0.2)  # B tries to write meanwhile
                raise RuntimeError("A rolls back")
        except RuntimeError:
            pass

    def thread_b() -> None:
        a_wrote.wait()
        try:
            # Its own transaction: on SQLite it waits for A's write lock, then commits.
            sync_store.events.add(run.id, "b", "k", "b on its own")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [e.message for e in sync_store.events.list(run.id)][1:] == ["b on its own"]
