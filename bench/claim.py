"""Claim throughput: W worker processes drain N pending tasks of one run, claiming
``batch`` at a time and completing each with its fencing token, through the library and
through the same statements written by hand on the raw driver.

Every drain is checked for exactly-once (no task claimed twice, none left behind), and
the check is printed with the figures. A second measurement claims without completing,
to compare batch claims with single claims on their own.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentstore import AgentStore, TaskDraft
from agentstore.backends import create_engine
from agentstore.types import uuid7
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
    "status, position, priority, attempt, max_attempts, claimed_by, lease_expires_at, "
    "available_at, retry_delay_seconds, retry_max_delay_seconds, cancel_reason, "
    "implementation_summary, blocker_signature, created_at, updated_at"
)
POSITION, ATTEMPT = 8, 10  # where the plan order and the fencing token are in RETURNED
NOT_PAUSED = (
    "NOT EXISTS (SELECT 1 FROM runs WHERE runs.id = tasks.run_id AND runs.status = 'paused')"
)
RESCUED_STATUS = """CASE WHEN cancel_reason IS NOT NULL THEN 'abandoned'
        WHEN max_attempts IS NOT NULL AND attempt >= max_attempts THEN 'blocked'
        ELSE 'pending' END"""
RESCUED_BLOCKER = """CASE WHEN cancel_reason IS NULL AND max_attempts IS NOT NULL
        AND attempt >= max_attempts THEN 'lease_expired' ELSE blocker_signature END"""
ATTEMPT_COLUMNS = (
    "id, run_id, task_id, attempt, status, summary, blocker_signature, result, created_at"
)
EVENT_COLUMNS = "run_id, ts, source, kind, message, payload, transaction_id"

# What the library runs per claim and per completion, written by hand for each driver.
# SQLite: several statements in one BEGIN IMMEDIATE transaction. A claim first rescues
# expired leases (none expire in a drain: the baseline checks, rather than journalling
# them as the library would); a completion records its attempt and journals an event.
SQLITE_RESCUE = f"""
UPDATE tasks SET status = {RESCUED_STATUS}, blocker_signature = {RESCUED_BLOCKER},
    available_at = :now, claimed_by = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id IN (SELECT id FROM tasks WHERE status = 'in_progress' AND lease_expires_at < :now
             LIMIT 100)
RETURNING id"""
SQLITE_CLAIM = f"""
UPDATE tasks SET status = 'in_progress', attempt = attempt + 1,
    claimed_by = :worker, lease_expires_at = :lease_expires_at, updated_at = :now
WHERE id IN (SELECT id FROM tasks WHERE status = 'pending' AND run_id = :run_id
             AND available_at <= :now AND {NOT_PAUSED} ORDER BY position LIMIT :limit)
RETURNING {RETURNED}"""
SQLITE_CLOSE = f"""
UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
    implementation_summary = :summary, blocker_signature = NULL, updated_at = :now
WHERE id = :task_id AND status = 'in_progress' AND attempt = :attempt
RETURNING {RETURNED}"""
SQLITE_RECORD_ATTEMPT = f"""
INSERT INTO task_attempts ({ATTEMPT_COLUMNS})
VALUES (:attempt_id, :run_id, :task_id, :attempt, 'completed', :summary, NULL, '{{}}', :now)
ON CONFLICT DO NOTHING"""
SQLITE_JOURNAL = f"""
INSERT INTO events ({EVENT_COLUMNS})
VALUES (:run_id, :now, 'system', 'task_completed', 'Task completed.', :payload, 0)"""

# A batch of completions (the library's ``complete_many``), in the same transaction as
# the next claim: one UPDATE ending every claim in hand, then the attempts' records and
# the journal events each one executemany.
SQLITE_CLOSE_MANY = f"""
WITH items(id, attempt, summary) AS (VALUES {{items}})
UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
    implementation_summary = items.summary, blocker_signature = NULL, updated_at = :now
FROM items WHERE tasks.id = items.id AND tasks.attempt = items.attempt
    AND tasks.status = 'in_progress'
RETURNING {RETURNED}"""

# PostgreSQL: each step is one statement of data-modifying CTEs, run in autocommit.
POSTGRES_RESCUE = f"""
rescuable AS MATERIALIZED (
    SELECT id FROM tasks WHERE status = 'in_progress' AND lease_expires_at < now()
    LIMIT 100 FOR UPDATE SKIP LOCKED),
rescued AS (
    UPDATE tasks SET status = {RESCUED_STATUS}, blocker_signature = {RESCUED_BLOCKER},
        available_at = now(), claimed_by = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM rescuable)
    RETURNING id, run_id, attempt, status),
rescued_attempts AS (
    INSERT INTO task_attempts ({ATTEMPT_COLUMNS})
    SELECT gen_random_uuid(), run_id, id, attempt, 'failed',
        'The lease expired before the holder finished.', 'lease_expired', '{{}}', now()
    FROM rescued ON CONFLICT DO NOTHING),
rescued_events AS (
    INSERT INTO events ({EVENT_COLUMNS})
    SELECT run_id, now(), 'system', 'lease_expired_' || CASE status WHEN 'pending'
        THEN 'requeued' ELSE status END, 'Lease expired.',
        jsonb_build_object('task_id', id::text, 'attempt', attempt),
        pg_current_xact_id()::text::bigint
    FROM rescued)"""
POSTGRES_CLAIM = f"""
WITH {POSTGRES_RESCUE},
claimable AS MATERIALIZED (
    SELECT id FROM tasks WHERE status = 'pending' AND run_id = %(run_id)s
    AND available_at <= now() AND {NOT_PAUSED}
    ORDER BY position LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE tasks SET status = 'in_progress', attempt = attempt + 1,
    claimed_by = %(worker)s, lease_expires_at = now() + %(lease)s, updated_at = now()
WHERE id IN (SELECT id FROM claimable)
RETURNING {RETURNED}"""
POSTGRES_COMPLETE = f"""
WITH closed AS (
    UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
        implementation_summary = %(summary)s, blocker_signature = NULL, updated_at = now()
    WHERE id = %(task_id)s AND status = 'in_progress' AND attempt = %(attempt)s
    RETURNING {RETURNED}),
closed_attempt AS (
    INSERT INTO task_attempts ({ATTEMPT_COLUMNS})
    SELECT gen_random_uuid(), run_id, id, attempt, 'completed', %(summary)s, NULL,
        '{{}}', now()
    FROM closed ON CONFLICT DO NOTHING),
closed_event AS (
    INSERT INTO events ({EVENT_COLUMNS})
    SELECT run_id, now(), 'system', 'task_completed', 'Task completed.',
        jsonb_build_object('task_id', id::text, 'attempt', attempt),
        pg_current_xact_id()::text::bigint
    FROM closed)
SELECT {RETURNED} FROM closed"""

# A claimed task as a worker keeps it: its id and the fencing token.
Claimed = tuple[str, int]
# Statements with their parameters, run in one transaction (or one autocommit statement).
Statements = list[tuple[str, dict[str, Any]]]


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
                    store.tasks.complete(task.id, "done", attempt=task.attempt)
                claimed.append((str(task.id), task.attempt))
    return claimed


def sqlite_claim(worker: str, run_id: uuid.UUID, batch: int) -> Statements:
    now = datetime.now(UTC)
    rescue = {"now": sqlite_text(now)}
    claim = {
        "worker": worker,
        "lease_expires_at": sqlite_text(now + LEASE),
        "now": sqlite_text(now),
        "run_id": run_id.hex,
        "limit": batch,
    }
    return [(SQLITE_RESCUE, rescue), (SQLITE_CLAIM, claim)]


def sqlite_complete(row: Any) -> Statements:
    task_id, attempt = uuid.UUID(row[0]), row[ATTEMPT]
    now = sqlite_text(datetime.now(UTC))
    close = {"summary": "done", "now": now, "task_id": task_id.hex, "attempt": attempt}
    record = {
        "attempt_id": uuid7().hex,  # time-ordered, as the library's ids
        "run_id": row[1],
        "task_id": task_id.hex,
        "attempt": attempt,
        "summary": "done",
        "now": now,
    }
    payload = json.dumps({"task_id": str(task_id), "attempt": attempt})
    journal = {"run_id": row[1], "now": now, "payload": payload}
    return [
        (SQLITE_CLOSE, close),
        (SQLITE_RECORD_ATTEMPT, record),
        (SQLITE_JOURNAL, journal),
    ]


def sqlite_complete_many(rows: list[Any]) -> list[tuple[str, Any]]:
    """The completion of every task in hand: each statement's parameters, or for the
    attempts and events a list of them (one ``executemany`` each)."""
    now = sqlite_text(datetime.now(UTC))
    items = ", ".join(f"(:id_{n}, :attempt_{n}, :summary_{n})" for n in range(len(rows)))
    close: dict[str, Any] = {"now": now}
    records, journal = [], []
    for n, row in enumerate(rows):
        task_id, attempt = uuid.UUID(row[0]), row[ATTEMPT]
        close.update({f"id_{n}": task_id.hex, f"attempt_{n}": attempt, f"summary_{n}": "done"})
        records.append(
            {
                "attempt_id": uuid7().hex,  # time-ordered, as the library's ids
                "run_id": row[1],
                "task_id": task_id.hex,
                "attempt": attempt,
                "summary": "done",
                "now": now,
            }
        )
        payload = json.dumps({"task_id": str(task_id), "attempt": attempt})
        journal.append({"run_id": row[1], "now": now, "payload": payload})
    return [
        (SQLITE_CLOSE_MANY.format(items=items), close),
        (SQLITE_RECORD_ATTEMPT, records),
        (SQLITE_JOURNAL, journal),
    ]


def postgres_claim(worker: str, run_id: uuid.UUID, batch: int) -> Statements:
    claim = {"run_id": run_id, "limit": batch, "worker": worker, "lease": LEASE}
    return [(POSTGRES_CLAIM, claim)]


def postgres_complete(row: Any) -> Statements:
    close = {"summary": "done", "task_id": row[0], "attempt": row[ATTEMPT]}
    return [(POSTGRES_COMPLETE, close)]


@dataclass(frozen=True)
class HandWritten:
    """The library's claim and completion by hand for one driver: the statements, with
    the parameters that driver takes."""

    claim: Callable[[str, uuid.UUID, int], Statements]
    complete: Callable[[Any], Statements]


HAND_WRITTEN = {
    "sqlite": HandWritten(sqlite_claim, sqlite_complete),
    "postgresql": HandWritten(postgres_claim, postgres_complete),
}

# Runs statements in one transaction (one alone: in autocommit, where the library does)
# and returns the rows of each.
Transact = Callable[[Statements], list[list[Any]]]


def hand_written_drain(
    drain: Drain, worker: str, ready: Callable[[], None], transact: Transact
) -> list[Claimed]:
    """The library's drain loop on the hand-written SQL, each step run by ``transact``."""
    sql = HAND_WRITTEN["sqlite" if drain.url.startswith("sqlite") else "postgresql"]
    run_id = uuid.UUID(drain.run_id)
    ready()
    claimed: list[Claimed] = []
    while True:
        *rescued, rows = transact(sql.claim(worker, run_id, drain.batch))
        assert not any(rescued), "a lease ran out during the drain"
        if not rows:
            return claimed
        for row in sorted(rows, key=lambda r: (r[POSITION], r[0])):  # plan order
            if drain.complete:
                closed = transact(sql.complete(row))[0]
                assert closed, row[0]
            claimed.append((str(uuid.UUID(str(row[0]))), row[ATTEMPT]))


def raw_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    """The hand-written SQL on the raw driver: sqlite3 or psycopg."""
    if drain.url.startswith("sqlite"):
        lite = raw_sqlite_connect(drain.url)

        def transact(statements: Statements) -> list[list[Any]]:
            lite.execute("BEGIN IMMEDIATE")
            results = [lite.execute(sql, parameters).fetchall() for sql, parameters in statements]
            lite.execute("COMMIT")
            return results

        with contextlib.closing(lite):
            return hand_written_drain(drain, worker, ready, transact)
    with raw_postgres_connect(drain.url) as pg:
        pg.autocommit = True  # each step is one statement

        def one_statement(statements: Statements) -> list[list[Any]]:
            [(sql, parameters)] = statements
            return [pg.execute(sql, parameters).fetchall()]

        return hand_written_drain(drain, worker, ready, one_statement)


def sqlalchemy_drain(drain: Drain, worker: str, ready: Callable[[], None]) -> list[Claimed]:
    """The same hand-written SQL through SQLAlchemy Connections of agentstore's engine (a
    pooled connection per step, in a transaction or autocommit as the library runs it)
    but no agentstore code and no type processing: the floor of any library built on
    them."""
    engine = create_engine(drain.url)
    autocommit = engine.dialect.name == "postgresql"

    def transact(statements: Statements) -> list[list[Any]]:
        with engine.connect() as connection:
            if autocommit:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            results = []
            for sql, parameters in statements:
                result = connection.exec_driver_sql(sql, parameters)
                results.append(list(result.fetchall()) if result.returns_rows else [])
            connection.commit()
            return results

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
        settled = {str(t.id) for t in final if t.status == wanted and t.attempt == 1}
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
