"""Claim throughput in one process: N concurrent asyncio tasks on ``AsyncAgentStore``
(sqlite3 in the store's threads, psycopg async) against N threads on ``AgentStore``,
each claiming and completing tasks of one run until none is left. Every drain is checked
for exactly-once.

At N=1 the same pair runs on the raw drivers too (the library's statements written by
hand: aiosqlite against sqlite3, psycopg's async connection against its sync one), to
show what the async driver itself costs on this machine.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from typing import Any

import aiosqlite
import psycopg

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.backends.sqlite import CONNECTION_PRAGMAS
from bench.claim import (
    ATTEMPT,
    HAND_WRITTEN,
    LEASE,
    POSITION,
    Claimed,
    Drain,
    Outcome,
    Statements,
    exactly_once_note,
    raw_drain,
)
from bench.harness import Context, Row, median, raw_postgres_dsn, raw_sqlite_path


async def _async_drain(
    url: str, run_id: uuid.UUID, n: int, batch: int
) -> tuple[float, list[Claimed]]:
    async with AsyncAgentStore.open(url) as store:
        await store.runs.get(run_id)  # connect before the clock starts
        claimed: list[Claimed] = []

        async def worker(name: str) -> None:
            while tasks := await store.tasks.claim_next(
                name, run_id=run_id, lease=LEASE, limit=batch
            ):
                for task in tasks:
                    await store.tasks.complete(task.id, "done", attempt=task.attempt)
                    claimed.append((str(task.id), task.attempt))

        began = time.monotonic()
        await asyncio.gather(*(worker(f"task-{i}") for i in range(n)))
        return time.monotonic() - began, claimed


def async_drain(url: str, run_id: uuid.UUID, n: int, batch: int) -> tuple[float, list[Claimed]]:
    return asyncio.run(_async_drain(url, run_id, n, batch))


def thread_drain(url: str, run_id: uuid.UUID, n: int, batch: int) -> tuple[float, list[Claimed]]:
    with AgentStore.open(url) as store:
        store.runs.get(run_id)
        claimed: list[Claimed] = []

        def worker(name: str) -> None:
            while tasks := store.tasks.claim_next(name, run_id=run_id, lease=LEASE, limit=batch):
                for task in tasks:
                    store.tasks.complete(task.id, "done", attempt=task.attempt)
                    claimed.append((str(task.id), task.attempt))

        threads = [threading.Thread(target=worker, args=(f"thread-{i}",)) for i in range(n)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - began, claimed


async def _raw_async_drain(url: str, run_id: uuid.UUID, batch: int) -> list[Claimed]:
    """bench.claim's hand-written drain, awaited on the async driver."""
    sql = HAND_WRITTEN["sqlite" if url.startswith("sqlite") else "postgresql"]
    claimed: list[Claimed] = []
    if url.startswith("sqlite"):
        lite = await aiosqlite.connect(raw_sqlite_path(url), isolation_level=None, timeout=30)
        for pragma in CONNECTION_PRAGMAS:
            await lite.execute(f"PRAGMA {pragma}")

        async def transact(statements: Statements) -> list[list[Any]]:
            await lite.execute("BEGIN IMMEDIATE")
            results = [list(await lite.execute_fetchall(*statement)) for statement in statements]
            await lite.execute("COMMIT")
            return results

        close = lite.close
    else:
        pg = await psycopg.AsyncConnection.connect(raw_postgres_dsn(url), autocommit=True)

        async def transact(statements: Statements) -> list[list[Any]]:
            [(statement, parameters)] = statements  # one statement a step, in autocommit
            return [list(await (await pg.execute(statement, parameters)).fetchall())]

        close = pg.close
    try:
        while True:
            *rescued, rows = await transact(sql.claim("raw", run_id, batch))
            assert not any(rescued), "a lease ran out during the drain"
            if not rows:
                return claimed
            for row in sorted(rows, key=lambda r: (r[POSITION], r[0])):  # plan order
                assert (await transact(sql.complete(row)))[0], row[0]
                claimed.append((str(uuid.UUID(str(row[0]))), row[ATTEMPT]))
    finally:
        await close()


def raw_async_drain(url: str, run_id: uuid.UUID, n: int, batch: int) -> tuple[float, list[Claimed]]:
    began = time.monotonic()
    claimed = asyncio.run(_raw_async_drain(url, run_id, batch))
    return time.monotonic() - began, claimed


def raw_sync_drain(url: str, run_id: uuid.UUID, n: int, batch: int) -> tuple[float, list[Claimed]]:
    began: list[float] = []
    claimed = raw_drain(
        Drain(url, str(run_id), batch, True), "raw", lambda: began.append(time.monotonic())
    )
    return time.monotonic() - began[0], claimed


DRAINS = {
    "async": async_drain,
    "sync": thread_drain,
    "raw async": raw_async_drain,
    "raw sync": raw_sync_drain,
}


def _process(face: str, url: str, run_id: str, n: int, batch: int, results: Any) -> None:
    results.put(DRAINS[face](url, uuid.UUID(run_id), n, batch))


def drain_once(face: str, url: str, tasks: int, n: int, batch: int) -> Outcome:
    """Plan ``tasks`` tasks, drain them in one fresh process, check exactly-once."""
    with AgentStore.open(url) as store:
        run = store.runs.create("benchmark", "/bench")
        store.tasks.replace_pending(run.id, [TaskDraft(f"t{i}", "bench") for i in range(tasks)])
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=_process, args=(face, url, str(run.id), n, batch, results))
    process.start()
    elapsed, claims = results.get(timeout=600)
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the {face} drain failed with exit code {process.exitcode}")
    claimed_ids = {task_id for task_id, _ in claims}
    with AgentStore.open(url) as store:
        final = store.tasks.list(run.id)
        settled = {str(t.id) for t in final if t.status == "completed" and t.attempt == 1}
        store.runs.delete(run.id)
    return Outcome(
        tasks / elapsed, len(claims) - len(claimed_ids), tasks - len(claimed_ids & settled)
    )


def run(context: Context) -> None:
    tasks = 200 if context.quick else 2000
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "async_claim")
        for n in (1, 10) if context.quick else (1, 10, 50):
            for batch in (1, 10):
                ways = ["async", "sync"] + (["raw async", "raw sync"] if n == 1 else [])
                outcomes: dict[str, list[Outcome]] = {way: [] for way in ways}
                for _ in range(context.repeat):  # alternate, so drift falls on all
                    for way in ways:
                        outcomes[way].append(drain_once(way, url, tasks, n, batch))
                figures = {
                    face: (
                        median([o.tasks_per_second for o in runs]),
                        sum(o.double_claims for o in runs),
                        sum(o.lost for o in runs),
                    )
                    for face, runs in outcomes.items()
                }
                ratio = figures["async"][0] / figures["sync"][0]
                target, met = "", None
                if n == 1:
                    target, met = ">= 0.9x sync", ratio >= 0.9
                elif n == 10 and dialect == "postgresql":
                    target, met = "> 1x sync", ratio > 1
                context.report.add(
                    Row(
                        "async",
                        f"{dialect}: {n} tasks vs {n} threads, batch={batch}",
                        "tasks/s",
                        figures["async"][0],
                        figures["sync"][0],
                        target=target,
                        met=None if context.quick else met,
                        notes="raw column: the sync face; "
                        + exactly_once_note(*figures.values(), drains=len(ways) * context.repeat),
                    )
                )
                if n == 1:
                    context.report.add(
                        Row(
                            "async",
                            f"{dialect}: raw drivers, async vs sync, batch={batch}",
                            "tasks/s",
                            figures["raw async"][0],
                            figures["raw sync"][0],
                            notes="the statements by hand on aiosqlite/psycopg async against "
                            "sqlite3/psycopg: what the async driver itself costs",
                        )
                    )
