"""Wake-up latency: how long after a plan is committed an idle worker's handler starts.

A worker idles on one run (``agentstore.worker.Worker``, a handler that returns at once);
another store plans one task at a time and times from its commit returning to the
handler starting. On PostgreSQL the worker's poll interval is an hour, so only the
plan's NOTIFY can wake it (sync and asyncio faces). On SQLite there is no NOTIFY: a plan
from another process waits for the worker's poll (its interval, here the default 1 s),
and a plan made through the worker's own store wakes it in the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.worker import TaskContext, Worker
from bench.harness import Context, Row, percentile

AN_HOUR = timedelta(hours=1)
P50_TARGET_MS, P99_TARGET_MS = 5.0, 50.0


def _sync_worker(url: str, run_id: Any, started: dict[str, float], poll: timedelta) -> Any:
    """An idle sync worker in a thread: (its store, a function that stops it)."""
    store = AgentStore.open(url)

    def handler(context: TaskContext) -> str:
        started[context.task.title] = time.perf_counter()
        return "done"

    worker = Worker(store, handler, run_id=run_id, poll_interval=poll)
    thread = threading.Thread(target=worker.run)
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(60)
        store.close()

    return store, stop


def _async_worker(url: str, run_id: Any, started: dict[str, float], poll: timedelta) -> Any:
    """An idle asyncio worker on an event loop in a thread: (None, a function that
    stops it)."""
    ready, loop_box = threading.Event(), []

    async def handler(context: TaskContext) -> str:
        started[context.task.title] = time.perf_counter()
        return "done"

    async def main() -> None:
        async with AsyncAgentStore.open(url) as store:
            worker = Worker(store, handler, run_id=run_id, poll_interval=poll)
            loop_box.append(worker)
            ready.set()
            await worker.run_async()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    ready.wait(60)

    def stop() -> None:
        loop_box[0].stop()
        thread.join(60)

    return None, stop


def _latencies(
    plan: Callable[[list[TaskDraft]], object], started: dict[str, float], samples: int
) -> list[float]:
    time.sleep(0.5)  # the worker has found nothing and sleeps
    latencies = []
    for n in range(samples):
        time.sleep(0.02)
        title = f"wake {n}"
        plan([TaskDraft(title, "o")])
        committed = time.perf_counter()
        deadline = committed + 30
        while title not in started:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no worker started {title} within 30 s")
            time.sleep(0.0002)
        latencies.append((started[title] - committed) * 1000)
    return latencies


def _measure(context: Context, dialect: str, case: str, samples: int) -> list[float]:
    url = context.databases.fresh(dialect, "wakeup")
    started: dict[str, float] = {}
    with AgentStore.open(url) as planner:
        run = planner.runs.create("wake-ups", "/bench", "running")
        poll = AN_HOUR if dialect == "postgresql" else timedelta(seconds=1)
        start = _async_worker if case == "asyncio" else _sync_worker
        own_store, stop = start(url, run.id, started, poll)
        through = own_store if case == "own store" else planner
        try:
            return _latencies(
                lambda drafts: through.tasks.replace_pending(run.id, drafts), started, samples
            )
        finally:
            stop()


CASES = {
    "postgresql": (("sync", "NOTIFY, sync face"), ("asyncio", "NOTIFY, asyncio face")),
    "sqlite": (("sync", "another store: poll"), ("own store", "the worker's own store")),
}


def run(context: Context) -> None:
    samples = 20 if context.quick else 200
    for dialect in context.dialects:
        for case, label in CASES[dialect]:
            latencies = _measure(context, dialect, case, samples)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            judged = dialect == "postgresql" and not context.quick
            context.report.add(
                Row(
                    "wakeup",
                    f"{dialect}: planned -> handler, {label}, p50",
                    "ms",
                    p50,
                    higher_is_better=False,
                    target=f"p50 <= {P50_TARGET_MS:g} ms, p99 <= {P99_TARGET_MS:g} ms"
                    if judged
                    else "",
                    met=p50 <= P50_TARGET_MS and p99 <= P99_TARGET_MS if judged else None,
                    notes=f"p99 {p99:.1f} ms over {samples} plans",
                )
            )
