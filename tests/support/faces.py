"""Test scaffolding: ``AsyncAgentStore`` driven from plain test code, so that one
repository suite runs on both faces.

``BlockingStore`` awaits each call of the asyncio face (real aiosqlite or psycopg async
underneath) on an event loop of its own, and gives the result or raises the error as the
call did. It is how the tests reach the asyncio face, not a face of the library: tests
of what only asyncio can show (tasks sharing a store, cancellation) are written as
coroutines.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import agentstore
from agentstore import AsyncAgentStore
from agentstore.async_faces import AsyncFaces


class _Blocking:
    """One face (``store.tasks``, …): every coroutine method, awaited to the end."""

    def __init__(self, runner: asyncio.Runner, face: Any) -> None:
        self._runner = runner
        self._face = face

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._face, name)
        if name == "recording":
            return lambda *args, **kwargs: _recording(self._runner, attribute(*args, **kwargs))
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(attribute(*args, **kwargs))

        return call


class _BlockingRecorder:
    def __init__(self, runner: asyncio.Runner, recorder: Any) -> None:
        self._runner = runner
        self._recorder = recorder

    def tool(self, tool_path: str, args: Any, call: Any) -> Any:
        return self._runner.run(self._recorder.tool(tool_path, args, call))

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        return self._runner.run(self._recorder.ask(*args, **kwargs))

    def flush(self) -> None:
        self._runner.run(self._recorder.flush())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)  # log, result, error, faults, execution_id…


@contextmanager
def _recording(runner: asyncio.Runner, manager: Any) -> Iterator[_BlockingRecorder]:
    with _entered(runner, manager) as recorder:
        yield _BlockingRecorder(runner, recorder)


@contextmanager
def _entered(runner: asyncio.Runner, manager: Any) -> Iterator[Any]:
    """``async with manager`` from sync code."""
    value = runner.run(manager.__aenter__())
    try:
        yield value
    except BaseException as exc:
        if not runner.run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        runner.run(manager.__aexit__(None, None, None))


class _BlockingFaces:
    def __init__(self, runner: asyncio.Runner, faces: AsyncFaces) -> None:
        for name in AsyncFaces.NAMES:
            setattr(self, name, _Blocking(runner, getattr(faces, name)))


class BlockingUnit(_BlockingFaces):
    def __init__(self, runner: asyncio.Runner, unit: Any) -> None:
        super().__init__(runner, unit)
        self.connection = unit.connection


class BlockingStore(_BlockingFaces):
    """An ``AsyncAgentStore`` on ``url``, awaited call by call. ``engine`` is a sync engine
    on the same database, for the tests' own data and checks."""

    face = "async"

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self._runner = asyncio.Runner()
        self.async_store = AsyncAgentStore.open(url, schema=schema)
        self.schema = self.async_store.schema
        super().__init__(self._runner, self.async_store)
        self.backend = self.async_store.backend
        self.engine = agentstore.create_engine(url)
        self.calls_engine = self.async_store.calls_engine  # where the calls' SQL runs
        self._closed = False

    def run(self, awaitable: Any) -> Any:
        return self._runner.run(awaitable)

    def migrate(self) -> None:
        self._runner.run(self.async_store.migrate())

    @contextmanager
    def transaction(self) -> Iterator[BlockingUnit]:
        with _entered(self._runner, self.async_store.transaction()) as unit:
            yield BlockingUnit(self._runner, unit)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._runner.run(self.async_store.close())
        self._runner.close()
        self.engine.dispose()

    def __enter__(self) -> BlockingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
