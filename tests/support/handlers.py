"""Handlers for workers in other processes (the ``agentstore worker`` command and the
process tests). Each writes what it did to the test's ``work_log`` table (see
``task_workers``) over a connection of its own, on the database in ``$WORK_LOG_URL``."""

from __future__ import annotations

import functools
import os
import time
import uuid
from datetime import timedelta

import sqlalchemy as sa

import agentstore
from agentstore import AgentStore, AsyncAgentStore
from agentstore.worker import TaskContext, Worker
from tests.support.task_workers import WORK_LOG


@functools.cache
def _log_engine() -> sa.Engine:
    # agentstore's engine: the URL may be a pooler's (``?transaction_pooling=true``).
    return agentstore.create_engine(os.environ["WORK_LOG_URL"])


def _log(context: TaskContext, outcome: str) -> None:
    with _log_engine().begin() as connection:
        connection.execute(
            sa.insert(WORK_LOG).values(
                task_id=str(context.task.id),
                worker=context.task.claimed_by,
                attempt=context.task.attempt,
                outcome=outcome,
            )
        )


def log_it(context: TaskContext) -> str:
    """The job body: one INSERT of the task into the log."""
    _log(context, "completed")
    return "logged"


def slowly(context: TaskContext) -> str:
    """A tenth of a second of work (waking early if stopped), then the log."""
    if context.sleep(0.1):
        return "stopped"
    _log(context, "completed")
    return "logged"


def hang(context: TaskContext) -> str:
    """Never finishes: the worker running this is killed mid-task."""
    _log(context, "claimed")
    while True:
        time.sleep(1)


def work(url: str, run_id: str, face: str, handler_name: str, lease_seconds: float) -> None:
    """A worker process: drain the run with the handler on the given face, then exit."""
    handler = globals()[handler_name]
    lease = timedelta(seconds=lease_seconds)
    options = {"run_id": uuid.UUID(run_id), "lease": lease, "poll_interval": timedelta(seconds=0.1)}
    os.environ["WORK_LOG_URL"] = url
    if face == "sync":
        with AgentStore.open(url) as store:
            Worker(store, handler, **options).run(until_idle=True)  # type: ignore[arg-type]
        return

    async def main() -> None:
        async with AsyncAgentStore.open(url) as store:
            await Worker(store, handler, **options).run_async(until_idle=True)  # type: ignore[arg-type]

    import asyncio

    asyncio.run(main())
