"""``CallThreads``: the asyncio face's hop to a thread for a call on a sync driver."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import time

import pytest

from agentstore.call_threads import CallThreads

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


def where() -> tuple[str, str]:
    return threading.current_thread().name, CALLER.get()


def test_a_call_runs_in_a_thread_of_the_pool_in_the_callers_context() -> None:
    threads = CallThreads(2, "test-calls")

    async def main() -> tuple[str, str]:
        CALLER.set("the caller")
        return await threads.run(where)

    thread, caller = asyncio.run(main())
    threads.close()
    assert thread.startswith("test-calls-")
    assert caller == "the caller"


def test_what_a_call_raises_reaches_the_caller_and_the_thread_goes_on() -> None:
    threads = CallThreads(1, "test-calls")

    def fail() -> None:
        raise KeyError("in the thread")

    async def main() -> tuple[str, str]:
        with pytest.raises(KeyError, match="in the thread"):
            await threads.run(fail)
        return await threads.run(where)

    assert asyncio.run(main())[0] == "test-calls-0"
    threads.close()


def test_calls_run_side_by_side_up_to_the_count() -> None:
    threads = CallThreads(3, "test-calls")
    inside = threading.Barrier(3, timeout=10)  # passes only with three calls at once

    async def main() -> list[int]:
        return await asyncio.gather(*(threads.run(inside.wait) for _ in range(3)))

    assert sorted(asyncio.run(main())) == [0, 1, 2]
    threads.close()


def test_a_cancelled_call_runs_to_its_end_and_the_loop_is_not_disturbed() -> None:
    threads = CallThreads(1, "test-calls")
    release, ended = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(10)
        ended.set()
        return "done"

    async def main() -> str:
        call = asyncio.create_task(threads.run(slow))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        release.set()
        return await threads.run(lambda: "next")  # after the cancelled one, in turn

    assert asyncio.run(main()) == "next"
    assert ended.is_set()
    threads.close()


def test_close_ends_the_threads_and_a_later_call_starts_them_again() -> None:
    threads = CallThreads(2, "test-restart")

    async def call() -> tuple[str, str]:
        return await threads.run(where)

    asyncio.run(call())
    threads.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("test-restart")]
    assert asyncio.run(call())[0].startswith("test-restart")
    threads.close()


def test_an_unclosed_pool_ends_its_threads_once_garbage_collected() -> None:
    async def call(threads: CallThreads) -> tuple[str, str]:
        return await threads.run(where)

    threads = CallThreads(2, "test-forgotten")
    asyncio.run(call(threads))
    del threads
    gc.collect()
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name.startswith("test-forgotten")]:
        assert time.monotonic() < deadline, "the threads of a forgotten pool are still there"
        time.sleep(0.01)


def test_a_call_made_while_another_thread_closes_the_pool_is_answered() -> None:
    # The close puts its stop signals while a call holds the one thread; a call queued
    # behind them would find no thread to take it. It must wait for the close, then start
    # the threads again.
    threads = CallThreads(1, "test-closing")
    running, release = threading.Event(), threading.Event()

    def busy() -> str:
        running.set()
        release.wait(10)
        return "busy"

    async def main() -> list[str]:
        first = asyncio.create_task(threads.run(busy))
        while not running.is_set():
            await asyncio.sleep(0.001)
        closing = threading.Thread(target=threads.close)
        closing.start()
        while threads._calls.empty():  # the close has queued its stop signal
            await asyncio.sleep(0.001)
        threading.Timer(0.05, release.set).start()  # the loop may block on the close
        second = await asyncio.wait_for(threads.run(lambda: "after the close"), timeout=10)
        closing.join()
        return [await first, second]

    assert asyncio.run(main()) == ["busy", "after the close"]
    threads.close()
