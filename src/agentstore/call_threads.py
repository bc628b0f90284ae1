"""Threads that run an asyncio face's calls on a sync driver (``AsyncTransactionPerCall``
on a SQLite file): ``await threads.run(function, *args)``.

``loop.run_in_executor`` does the same with two chained futures (a
``concurrent.futures.Future`` with its condition, wrapped in an asyncio one, each with
its callbacks): about 110 µs a call on the benchmark machine, where this takes 65 µs (the
call is put on a queue, a thread runs it in the caller's context and hands its outcome
to the loop with ``call_soon_threadsafe``). A short write is 250 to 500 µs, so the hop
was a third of the asyncio face's cost (``bench/README.md``, async_claim).

The threads start with the first call and end at ``close`` (a later call starts them
again, as a disposed engine connects again), or when the pool is garbage-collected; they
are daemons, so an unclosed store never holds up the exit. A call whose caller stopped
awaiting it (cancelled) still runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# A call: the loop and future to settle, the caller's context, the function, its args.
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Any, Any]


class CallThreads:
    """``count`` threads named ``name-<n>`` running calls in turn from one queue."""

    def __init__(self, count: int, name: str) -> None:
        self._count = count
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # the threads' start and stop, and each put
        # Garbage-collected unclosed: the threads (which hold only the queue) end.
        weakref.finalize(self, _stop, self._calls, self._threads, False)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in one of the threads, in the caller's context."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = (loop, future, contextvars.copy_context(), function, args)
        # Under the lock ``close`` holds: a call queued behind its stop signals, with no
        # thread left to take it, would never be answered. (Uncontended, about 0.1 µs;
        # contended only while a close from another thread drains the queue.)
        with self._lock:
            if not self._threads:
                self._start()
            self._calls.put(call)
        return await future

    def _start(self) -> None:
        for n in range(self._count):
            thread = threading.Thread(
                target=_serve, args=(self._calls,), name=f"{self._name}-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Let the calls queued end, then end the threads (blocks until they have)."""
        with self._lock:
            _stop(self._calls, self._threads, True)


def _serve(calls: queue.SimpleQueue[_Call | None]) -> None:
    while (call := calls.get()) is not None:
        loop, future, context, function, args = call
        try:
            outcome: tuple[Any, BaseException | None] = (context.run(function, *args), None)
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, future, *outcome)
        del call, future, outcome  # hold nothing of it while waiting for the next


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _stop(
    calls: queue.SimpleQueue[_Call | None], threads: list[threading.Thread], join: bool
) -> None:
    for _ in threads:
        calls.put(None)
    if join:
        for thread in threads:
            thread.join()
    threads.clear()
