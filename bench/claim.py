"""Claim throughput: W worker processes drain N pending tasks of one run, claiming
``batch`` at a time and completing each with its fencing token, through the library and
through the same statements written by hand on the raw driver.

Every drain is checked for exactly-once (no task claimed twice, none left behind), and
the check is printed with the figures. A second measurement claims without completing,
to compare batch claims with single claims on their own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentstore import AgentStore, TaskDraft
from agentstore.backends import create_engine
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


@dataclass(frozen=True)
class HandWritten:
    """The library's claim and complete as SQL written by hand for one driver, with the
    parameters that driver takes."""

    claim: str
    complete: str
    claim_parameters: Callable[[str, uuid.UUID, int], tuple[Any, ...]]
    complete_parameters: Callable[[Any, int], tuple[Any, ...]]


def _sqlite_claim_parameters(worker: str, run_id: uuid.UUID, batch: int) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    return (worker, sqlite_text(now + LEASE), sqlite_text(now), run_id.hex, batch)


HAND_WRITTEN = {
    "sqlite": HandWritten(
        SQLITE_CLAIM,
        SQLITE_COMPLETE,
        _sqlite_claim_parameters,
        lambda task_id, attempt: ("done", sqlite_text(datetime.now(UTC)), task_id, attempt),
    ),
    "postgresql": HandWritten(
        POSTGRES_CLAIM,
        POSTGRES_COMPLETE,
        lambda worker, run_id, batch: (run_id, batch, worker, LEASE, datetime.now(UTC)),
        lambda task_id, attempt: ("done", datetime.now(UTC), task_id, attempt),
    ),
}

# Runs one statement in a transaction of its own and returns its rows.
Transact = Callable[[str, tuple[Any, ...]], list[Any]]


def hand_written_drain(
    drain: Drain, worker: str, ready: Callable[[], None], transact: Transact
) -> list[Claimed]:
    """The library's drain loop on the hand-written SQL, each statement run by
    ``transact``."""
    sql = HAND_WRITTEN["sqlite" if drain.url.startswith("sqlite") else "postgresql"]
    run_id = uuid.UUID(drain.run_id)
    ready()
    claimed: list[Claimed] = []
    while rows := transact(sql.claim, sql.claim_parameters(worker, run_id, drain.batch)):
        for row in sorted(rows, key=lambda r: (r[8], r[0])):  # plan order
            task_id, attempt = row[0], row[10]
            if drain.complete:
                done = transact(sql.complete, sql.complete_parameters(task_id, attempt))
                assert done, task_id
            claimed.append((str(uuid.UUID(str(task_id))), attempt))
    return claimed


def raw_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    """The hand-written SQL on the raw driver: sqlite3 or psycopg."""
    if drain.url.startswith("sqlite"):
        lite = raw_sqlite_connect(drain.url)

        def transact(sql: str, parameters: tuple[Any, ...]) -> list[Any]:
            lite.execute("BEGIN IMMEDIATE")
            rows = lite.execute(sql, parameters).fetchall()
            lite.execute("COMMIT")
            return rows

        with contextlib.closing(lite):
            return hand_written_drain(drain, worker, ready, transact)
    with raw_postgres_connect(drain.url) as pg:

        def transact(sql: str, parameters: tuple[Any, ...]) -> list[Any]:
            rows = pg.execute(sql, parameters).fetchall()
            pg.commit()
            return rows

        return hand_written_drain(drain, worker, ready, transact)


def sqlalchemy_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    """The same hand-written SQL through SQLAlchemy Connections of agentstore's engine (a
    pooled connection and a transaction per statement, as the library runs them) but no
    agentstore code and no type processing: the floor of any library built on them."""
    engine = create_engine(drain.url)

    def transact(sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        with engine.begin() as connection:
            return list(connection.exec_driver_sql(sql, parameters).fetchall())

    try:
        with engine.connect():  # connect before the clock starts
            pass
        return hand_written_drain(drain, worker, ready, transact)
    finally:
        engine.dispose()


DRAINS: dict[str, Callable[[Drain, str, Callable[[], None]], list[Claimed]]] = {
    "library": library_drain,
    "raw": raw_drain,
    "sqlalchemy": sqlalchemy_drain,
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
        for workers in worker_counts:
            for batch in (1, 10):
                # One worker also runs the SQL through bare SQLAlchemy, to show its share.
                hows = ("library", "raw", "sqlalchemy") if workers == 1 else ("library", "raw")
                figures = measure(context, dialect, url, tasks, workers, batch, True, hows)
                library, raw = figures["library"], figures["raw"]
                ratio = library[0] / raw[0]
                context.report.add(
                    Row(
                        "claim",
                        f"{dialect}: claim+complete W={workers} batch={batch}",
                        "tasks/s",
                        library[0],
                        raw[0],
                        target=">= 0.8x raw",
                        met=None if context.quick else ratio >= 0.8,
                        notes=exactly_once_note(
                            *figures.values(), drains=len(hows) * context.repeat
                        ),
                    )
                )
                if "sqlalchemy" in figures:
                    context.report.add(
                        Row(
                            "claim",
                            f"{dialect}: the same SQL on bare SQLAlchemy, W=1 batch={batch}",
                            "tasks/s",
                            figures["sqlalchemy"][0],
                            raw[0],
                            notes="no agentstore code, no type processing: the floor of "
                            "a library on SQLAlchemy Connections",
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
