"""Claim throughput: W worker processes drain N pending tasks of one run, claiming
``batch`` at a time and completing each with its fencing token, through the library and
through the same statements written by hand on the raw driver.

Every drain is checked for exactly-once (no task claimed twice, none left behind), and
the check is printed with the figures. A second measurement claims without completing,
to compare batch claims with single claims on their own.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentstore import AgentStore, TaskDraft
from bench.harness import (
    Context,
    Row,
    median,
    raw_postgres_connect,
    raw_sqlite_connect,
    sqlite_text,
)

LEASE = timedelta(minutes=5)
RETURNED = (
    "id, run_id, title, objective, acceptance_criteria, verification_steps, allowed_paths, "
    "status, position, priority, attempt_count, max_attempts, claimed_by, lease_expires_at, "
    "implementation_summary, blocker_signature, created_at, updated_at"
)
# The statements the library runs, written by hand for each driver.
SQLITE_CLAIM = f"""
UPDATE tasks SET status = 'in_progress', attempt_count = attempt_count + 1,
    claimed_by = ?, lease_expires_at = ?, updated_at = ?
WHERE id IN (SELECT id FROM tasks WHERE status = 'pending' AND run_id = ?
             ORDER BY position, id LIMIT ?)
RETURNING {RETURNED}"""
SQLITE_COMPLETE = f"""
UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
    implementation_summary = ?, blocker_signature = NULL, updated_at = ?
WHERE id = ? AND status = 'in_progress' AND attempt_count = ?
RETURNING {RETURNED}"""
POSTGRES_CLAIM = f"""
WITH claimable AS MATERIALIZED (
    SELECT id FROM tasks WHERE status = 'pending' AND run_id = %s
    ORDER BY position, id LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE tasks SET status = 'in_progress', attempt_count = attempt_count + 1,
    claimed_by = %s, lease_expires_at = now() + %s, updated_at = %s
WHERE id IN (SELECT id FROM claimable)
RETURNING {RETURNED}"""
POSTGRES_COMPLETE = f"""
UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
    implementation_summary = %s, blocker_signature = NULL, updated_at = %s
WHERE id = %s AND status = 'in_progress' AND attempt_count = %s
RETURNING {RETURNED}"""

# A claimed task as a worker keeps it: its id and the fencing token.
Claimed = tuple[str, int]


@dataclass(frozen=True)
class Drain:
    url: str
    run_id: str
    batch: int
    complete: bool


def library_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    run_id = uuid.UUID(drain.run_id)
    with AgentStore.open(drain.url) as store:
        store.runs.get(run_id)  # connect before the clock starts
        ready()
        claimed: list[Claimed] = []
        while tasks := store.tasks.claim_next(
            worker, run_id=run_id, lease=LEASE, limit=drain.batch
        ):
            for task in tasks:
                if drain.complete:
                    store.tasks.complete(task.id, "done", attempt=task.attempt_count)
                claimed.append((str(task.id), task.attempt_count))
    return claimed


def raw_sqlite_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    connection = raw_sqlite_connect(drain.url)
    run_id = uuid.UUID(drain.run_id).hex
    ready()
    claimed: list[Claimed] = []
    while True:
        now = datetime.now(UTC)
        connection.execute("BEGIN IMMEDIATE")
        rows = connection.execute(
            SQLITE_CLAIM,
            (worker, sqlite_text(now + LEASE), sqlite_text(now), run_id, drain.batch),
        ).fetchall()
        connection.execute("COMMIT")
        if not rows:
            break
        for row in sorted(rows, key=lambda r: (r[8], r[0])):  # plan order
            task_id, attempt = row[0], row[10]
            if drain.complete:
                connection.execute("BEGIN IMMEDIATE")
                done = connection.execute(
                    SQLITE_COMPLETE, ("done", sqlite_text(datetime.now(UTC)), task_id, attempt)
                ).fetchone()
                connection.execute("COMMIT")
                assert done is not None, task_id
            claimed.append((str(uuid.UUID(task_id)), attempt))
    connection.close()
    return claimed


def raw_postgres_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    connection = raw_postgres_connect(drain.url)
    run_id = uuid.UUID(drain.run_id)
    ready()
    claimed: list[Claimed] = []
    while True:
        rows = connection.execute(
            POSTGRES_CLAIM, (run_id, drain.batch, worker, LEASE, datetime.now(UTC))
        ).fetchall()
        connection.commit()
        if not rows:
            break
        for row in sorted(rows, key=lambda r: (r[8], r[0])):
            task_id, attempt = row[0], row[10]
            if drain.complete:
                done = connection.execute(
                    POSTGRES_COMPLETE, ("done", datetime.now(UTC), task_id, attempt)
                ).fetchone()
                connection.commit()
                assert done is not None, task_id
            claimed.append((str(task_id), attempt))
    connection.close()
    return claimed


DRAINS: dict[str, Callable[[Drain, str, Callable[[], None]], list[Claimed]]] = {
    "library": library_drain,
    "raw sqlite": raw_sqlite_drain,
    "raw postgresql": raw_postgres_drain,
}


def worker_process(how: str, drain: Drain, worker: str, start: Any, results: Any) -> None:
    """One worker: connect, wait for the others, drain, and report its span and claims."""

    began: list[float] = []

    def ready() -> None:
        start.wait()
        began.append(time.monotonic())

    claimed = DRAINS[how](drain, worker, ready)
    results.put((began[0], time.monotonic(), claimed))


@dataclass(frozen=True)
class Outcome:
    tasks_per_second: float
    double_claims: int
    lost: int


def drain_once(how: str, url: str, tasks: int, workers: int, batch: int, complete: bool) -> Outcome:
    """Plan ``tasks`` tasks in a new run, drain them with ``workers`` processes, check
    exactly-once, then delete the run (so every drain starts from the same table)."""
    with AgentStore.open(url) as store:
        run = store.runs.create("benchmark", "/bench")
        drafts = [TaskDraft(f"task {i}", "benchmark") for i in range(tasks)]
        store.tasks.replace_pending(run.id, drafts)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(workers + 1)
    results = context.Queue()
    drain = Drain(url, str(run.id), batch, complete)
    processes = [
        context.Process(target=worker_process, args=(how, drain, f"w{n}", start, results))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    start.wait()
    spans = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a {how} worker failed with exit code {process.exitcode}")
    elapsed = max(end for _, end, _ in spans) - min(begin for begin, _, _ in spans)
    claims = [claim for _, _, claimed in spans for claim in claimed]
    claimed_ids = {task_id for task_id, _ in claims}
    with AgentStore.open(url) as store:
        final = store.tasks.list(run.id)
        wanted = "completed" if complete else "in_progress"
        settled = {str(t.id) for t in final if t.status == wanted and t.attempt_count == 1}
        store.runs.delete(run.id)
    double_claims = len(claims) - len(claimed_ids)
    lost = tasks - len(claimed_ids & settled)
    return Outcome(tasks / elapsed, double_claims, lost)


def measure(
    context: Context,
    dialect: str,
    url: str,
    tasks: int,
    workers: int,
    batch: int,
    complete: bool,
    hows: tuple[str, ...],
) -> dict[str, tuple[float, int, int]]:
    """Median tasks/s of ``context.repeat`` drains for each way, alternating the ways so
    that drift on a noisy machine falls on both; with the total of double claims and
    lost tasks over every drain."""
    outcomes: dict[str, list[Outcome]] = {how: [] for how in hows}
    for _ in range(context.repeat):
        for how in hows:
            outcomes[how].append(drain_once(how, url, tasks, workers, batch, complete))
    return {
        how: (
            median([o.tasks_per_second for o in runs]),
            sum(o.double_claims for o in runs),
            sum(o.lost for o in runs),
        )
        for how, runs in outcomes.items()
    }


def exactly_once_note(*figures: tuple[float, int, int], drains: int) -> str:
    doubles = sum(f[1] for f in figures)
    lost = sum(f[2] for f in figures)
    verdict = "exactly once" if doubles == 0 and lost == 0 else "NOT EXACTLY ONCE"
    return f"{verdict}: {doubles} double claims, {lost} lost in {drains} drains"


def run(context: Context) -> None:
    tasks = 200 if context.quick else 2000
    worker_counts = (1, 2) if context.quick else (1, 2, 4, 8)
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "claim")
        raw = f"raw {dialect}"
        for workers in worker_counts:
            for batch in (1, 10):
                figures = measure(
                    context, dialect, url, tasks, workers, batch, True, ("library", raw)
                )
                library, baseline = figures["library"], figures[raw]
                ratio = library[0] / baseline[0]
                context.report.add(
                    Row(
                        "claim",
                        f"{dialect}: claim+complete W={workers} batch={batch}",
                        "tasks/s",
                        library[0],
                        baseline[0],
                        target=">= 0.8x raw",
                        met=None if context.quick else ratio >= 0.8,
                        notes=exactly_once_note(library, baseline, drains=2 * context.repeat),
                    )
                )
        batch_claims(context, dialect, url, tasks)


def batch_claims(context: Context, dialect: str, url: str, tasks: int) -> None:
    """Claims alone, limit 10 against limit 1, one worker and four."""
    for workers in (1,) if context.quick else (1, 4):
        single = measure(context, dialect, url, tasks, workers, 1, False, ("library",))
        batched = measure(context, dialect, url, tasks, workers, 10, False, ("library",))
        speedup = batched["library"][0] / single["library"][0]
        context.report.add(
            Row(
                "claim",
                f"{dialect}: claim only W={workers}, batch 10 vs batch 1",
                "tasks/s",
                batched["library"][0],
                notes=(
                    f"{speedup:.1f}x the {single['library'][0]:,.0f} tasks/s of single claims; "
                    + exactly_once_note(
                        single["library"], batched["library"], drains=2 * context.repeat
                    )
                ),
                target=">= 3x single" if dialect == "postgresql" else "",
                met=None if context.quick or dialect != "postgresql" else speedup >= 3,
            )
        )
