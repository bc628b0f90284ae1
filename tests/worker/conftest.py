"""The worker on both faces: ``run_worker`` runs a ``Worker`` on the test's face (a real
``AgentStore``, or a real ``AsyncAgentStore`` opened inside the worker's event loop), and
``background`` runs one in a thread while the test acts on the database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from agentstore import AgentStore, AsyncAgentStore, RunRecord
from agentstore.worker import Worker, WorkerCounters
from tests.support.databases import WITH_POOLER

FAST = {"poll_interval": timedelta(milliseconds=50)}


@pytest.fixture(params=WITH_POOLER)
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite, PostgreSQL, and PostgreSQL through PgBouncer in transaction mode."""
    return str(request.param)


@pytest.fixture
def run(sync_store: AgentStore) -> RunRecord:
    return sync_store.runs.create("worked by a worker", "/repo", "running")


class WorkerOnFace:
    """Runs workers on one face of one database."""

    def __init__(self, db_url: str, face: str) -> None:
        self.db_url = db_url
        self.face = face

    def run(self, handler: Any, *, until_idle: bool = True, **options: Any) -> WorkerCounters:
        started: list[Worker] = []
        return self._run(handler, started, until_idle, options)

    def _run(
        self, handler: Any, started: list[Worker], until_idle: bool, options: dict[str, Any]
    ) -> WorkerCounters:
        options = {**FAST, **options}
        if self.face == "sync":
            with AgentStore.open(self.db_url) as store:
                worker = Worker(store, handler, **options)
                started.append(worker)
                return worker.run(until_idle=until_idle)

        async def main() -> WorkerCounters:
            async with AsyncAgentStore.open(self.db_url) as store:
                worker = Worker(store, handler, **options)
                started.append(worker)
                return await worker.run_async(until_idle=until_idle)

        return asyncio.run(main())

    @contextmanager
    def background(
        self, handler: Any, *, until_idle: bool = False, **options: Any
    ) -> Iterator[Callable[[], WorkerCounters]]:
        """A worker running in a thread; yields ``stop()``, which stops it gracefully and
        gives its counters."""
        started: list[Worker] = []
        result: list[WorkerCounters] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                result.append(self._run(handler, started, until_idle, options))
            except BaseException as exc:  # reported by stop()
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()

        def stop() -> WorkerCounters:
            while not started and thread.is_alive():
                thread.join(0.01)
            if started:
                started[0].stop()
            thread.join(60)
            assert not thread.is_alive(), "the worker did not stop"
            if errors:
                raise errors[0]
            return result[0]

        try:
            yield stop
        finally:
            if thread.is_alive():
                stop()


@pytest.fixture
def workers(db_url: str, face: str) -> WorkerOnFace:
    return WorkerOnFace(db_url, face)
