"""Concurrency in one process: 200 asyncio tasks share one ``AsyncAgentStore`` and drain
5,000 tasks, on a SQLite file and on PostgreSQL. Every task is completed once, and no task
is ever claimed twice. Throughput is printed, never asserted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from agentstore import AsyncAgentStore, TaskDraft, TaskStatus

pytestmark = pytest.mark.slow
WORKERS = 200
TASKS = 5000


@pytest.mark.parametrize("limit", [1, 10])
def test_two_hundred_tasks_drain_five_thousand_exactly_once(
    db_url: str, dialect: str, limit: int
) -> None:
    async def main() -> tuple[Counter[object], Counter[object], list[object], float]:
        async with AsyncAgentStore.open(db_url) as store:
            run = await store.runs.create("asyncio drain", "/r")
            await store.tasks.replace_pending(
                run.id, [TaskDraft(f"task {n}", "o") for n in range(TASKS)]
            )
            claims: Counter[object] = Counter()
            completions: Counter[object] = Counter()

            async def worker(name: str) -> None:
                while claimed := await store.tasks.claim_next(name, run_id=run.id, limit=limit):
                    for task in claimed:
                        claims[task.id] += 1
                        await store.tasks.complete(task.id, name, attempt=task.attempt)
                        completions[task.id] += 1

            began = time.perf_counter()
            await asyncio.gather(*(worker(f"task-{n}") for n in range(WORKERS)))
            elapsed = time.perf_counter() - began
            return claims, completions, await store.tasks.list(run.id), elapsed

    claims, completions, tasks, elapsed = asyncio.run(main())
    print(f"\n{dialect} limit={limit}: {TASKS / elapsed:,.0f} tasks/s with {WORKERS} asyncio tasks")
    assert len(tasks) == TASKS
    assert all(task.status is TaskStatus.COMPLETED for task in tasks)  # type: ignore[attr-defined]
    assert all(task.attempt == 1 for task in tasks)  # type: ignore[attr-defined]
    assert set(claims.values()) == {1}  # no double claims
    assert set(completions.values()) == {1} and len(completions) == TASKS
