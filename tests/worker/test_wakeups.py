"""An idle worker wakes at once, not at its next poll: on PostgreSQL a plan (or an answer
to a waiting task) committed by any process wakes it through NOTIFY; on either database
one made through the worker's own store wakes it in the process. The poll interval is an
hour here (and a worker that has not worked yet polls no sooner), so a wake-up is the
only way the task can be claimed within the test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from agentstore import AgentStore, AsyncAgentStore, RunRecord, TaskDraft, TaskStatus
from agentstore.worker import TaskContext, Worker
from tests.worker.test_worker import wait_for

AN_HOUR = timedelta(hours=1)


@contextmanager
def idle_worker(db_url: str, face: str, **options: Any) -> Iterator[tuple[Any, Callable[..., Any]]]:
    """A worker idling in a thread with an hour's poll; yields its store and a function
    that runs a store call in the worker's world (its thread or its event loop)."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def target() -> None:
        if face == "sync":
            with AgentStore.open(db_url) as store:
                worker = Worker(store, lambda c: "done", poll_interval=AN_HOUR, **options)
                state.update(store=store, worker=worker)
                ready.set()
                worker.run()
            return

        async def main() -> None:
            async with AsyncAgentStore.open(db_url) as store:
                worker = Worker(store, handler, poll_interval=AN_HOUR, **options)
                state.update(store=store, worker=worker, loop=asyncio.get_running_loop())
                ready.set()
                await worker.run_async()

        async def handler(context: TaskContext) -> str:
            return "done"

        asyncio.run(main())

    thread = threading.Thread(target=target)
    thread.start()
    assert ready.wait(30)

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        bound = getattr(state["store"].tasks, method)
        if face == "sync":
            return bound(*args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(bound(*args, **kwargs), state["loop"])
        return future.result(30)

    try:
        yield state["store"], call
    finally:
        state["worker"].stop()
        thread.join(30)
        assert not thread.is_alive()


def let_it_idle(worker_claims: Callable[[], int]) -> None:
    """Give the worker time to find nothing and go to sleep."""
    time.sleep(0.5)
    assert worker_claims() == 0


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_plan_committed_elsewhere_wakes_an_idle_worker_through_notify(
    db_url: str, face: str, sync_store: AgentStore, run: RunRecord
) -> None:
    with idle_worker(db_url, face, run_id=run.id) as (_, _call):
        let_it_idle(lambda: len(sync_store.tasks.list(run.id)))
        [task] = sync_store.tasks.replace_pending(run.id, [TaskDraft("wake up", "o")])
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED, 20)


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_retry_that_becomes_due_wakes_the_worker_at_its_time(
    db_url: str, face: str, sync_store: AgentStore, run: RunRecord
) -> None:
    [task] = sync_store.tasks.replace_pending(run.id, [TaskDraft("later", "o")])
    sync_store.tasks.claim_next("someone else", run_id=run.id)
    with idle_worker(db_url, face, run_id=run.id) as _:
        let_it_idle(lambda: 0)
        # Retried in a second: the NOTIFY wakes the worker, which sleeps until then.
        sync_store.tasks.fail(task.id, "boom", attempt=1, retry_in=timedelta(seconds=1))
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED, 20)
    assert sync_store.tasks.get(task.id).attempt == 2


def test_a_plan_through_the_workers_own_store_wakes_it(
    db_url: str, face: str, sync_store: AgentStore, run: RunRecord
) -> None:
    with idle_worker(db_url, face, run_id=run.id, listen=False) as (_, call):
        let_it_idle(lambda: len(sync_store.tasks.list(run.id)))
        [task] = call("replace_pending", run.id, [TaskDraft("wake up", "o")])
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED, 20)


def waiting_task(store: AgentStore, run: RunRecord) -> Any:
    """A task of ``run`` that asked a person (claimed by someone else) and waits."""
    [task] = store.tasks.replace_pending(run.id, [TaskDraft("asks", "o")])
    store.tasks.claim_next("someone else", run_id=run.id)
    return store.tasks.wait(task.id, "may I?", attempt=1)


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_an_answer_committed_elsewhere_wakes_an_idle_worker_through_notify(
    db_url: str, face: str, sync_store: AgentStore, run: RunRecord
) -> None:
    task = waiting_task(sync_store, run)
    with idle_worker(db_url, face, run_id=run.id) as _:
        let_it_idle(lambda: 0)
        sync_store.tasks.answer(task.id, "yes")
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED, 20)


def test_an_answer_through_the_workers_own_store_wakes_it(
    db_url: str, face: str, sync_store: AgentStore, run: RunRecord
) -> None:
    task = waiting_task(sync_store, run)
    with idle_worker(db_url, face, run_id=run.id, listen=False) as (_, call):
        let_it_idle(lambda: 0)
        call("answer", task.id, "yes")
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.COMPLETED, 20)


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_cancellation_reaches_the_holder_at_once(
    db_url: str, sync_store: AgentStore, run: RunRecord
) -> None:
    """With a one-hour lease the heartbeat is 20 minutes away: only the cancellation's
    NOTIFY can make the worker heartbeat and learn of it."""
    [task] = sync_store.tasks.replace_pending(run.id, [TaskDraft("long", "o")])
    started = threading.Event()

    def handler(context: TaskContext) -> str:
        started.set()
        while not context.sleep(0.02):
            pass
        return "stopped"

    with AgentStore.open(db_url) as store:
        worker = Worker(store, handler, run_id=run.id, lease=AN_HOUR, poll_interval=AN_HOUR)
        thread = threading.Thread(target=worker.run)
        thread.start()
        assert started.wait(30)
        sync_store.tasks.cancel(task.id, "stop now")
        wait_for(lambda: sync_store.tasks.get(task.id).status is TaskStatus.ABANDONED, 20)
        worker.stop()
        thread.join(30)
    assert worker.counters.cancelled == 1
