"""Peers: agentstore's worker against the job queues our users would pick instead, on the
same PostgreSQL server in the same run.

W worker processes (1, 2, 4) drain N jobs (2,000) claimed 1 or 10 at a time. The job
body is the same everywhere: one ``INSERT INTO bench_log (job_id)`` of the job's id,
over the worker's own connection where the system exposes one, else over a psycopg
connection the process opens before the clock starts. How each contender is driven:

- ``agentstore`` (sync face): ``AgentStore.open`` and ``Worker(store, handler,
  run_id=..., concurrency=b, batch=b, listen=False).run(until_idle=True)`` (a worker
  claims no more tasks than it has free slots, so batch b needs concurrency b); the tasks
  are planned beforehand with ``store.tasks.replace_pending``. ``listen=False``: every
  task is planned before the clock starts, so NOTIFY has nothing to wake, and LISTEN
  would only open one more connection per worker. The job body runs on a psycopg
  connection of the process (the store does not lend its own).
- ``agentstore async``: the same with ``AsyncAgentStore``, an async handler on a psycopg
  ``AsyncConnection``, and ``await worker.run_async(until_idle=True)``.
- ``procrastinate``: a worker with ``concurrency=1, wait=False`` (it stops once a fetch
  finds no job), ``listen_notify=False`` (as agentstore's ``listen=False``) over a
  ``PsycopgConnector``; jobs deferred beforehand with ``batch_defer_async``, the schema
  applied with ``schema_manager.apply_schema_async``. Its job body is a
  ``pass_context=True`` task writing through ``context.app.connector`` (its pool).
  Procrastinate fetches one job at a time: it runs at batch 1 only.
- ``pgqueuer``: a ``QueueManager`` over ``AsyncpgDriver`` (one asyncpg connection; its
  psycopg driver stalls, see ``pgqueuer_queries``) run with ``batch_size=b`` in
  ``QueueExecutionMode.drain`` (it shuts down once no job is queued and its own jobs are
  done), its other options left at their defaults; jobs enqueued beforehand in one
  ``Queries.enqueue`` call, the schema installed with ``Queries.install``. Its job body
  writes through the driver. By design pgqueuer runs the jobs it fetched concurrently
  (no cap by default) and writes their completions in batches, on its one connection.
- ``raw psycopg``: a hand-written loop on one autocommit psycopg connection per process
  doing what agentstore's worker does per task: claim (``FOR UPDATE SKIP LOCKED``),
  run the body, complete fenced by the attempt while recording the attempt row and the
  ``task_completed`` event, each completion one statement (data-modifying CTEs), and the
  completion of the last task in hand fused with the claim of the next ones.

Every drain starts from empty queue tables (truncated, then the jobs enqueued and the
queue table analyzed, as autovacuum would) and is checked for exactly-once: ``bench_log``
holds every enqueued job once and nothing else, and the queue marks every job done.
Time runs from a barrier that every process reaches connected and ready (its worker
built where the API allows) until the last process returns. Figures are medians of
``--repeat`` drains; the contenders alternate inside each repeat.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import psycopg
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.qm import QueueManager
from pgqueuer.queries import Queries
from pgqueuer.types import QueueExecutionMode
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.tasks import Task

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.worker import TaskContext, Worker
from bench.claim import POSTGRES_RESCUE, exactly_once_note
from bench.harness import Context, Ready, Row, drain_in_processes, median, raw_postgres_dsn

LEASE = timedelta(minutes=5)  # agentstore's default lease, used by the raw loop too
SPEED_TARGET = 1.5  # agentstore against the best peer
RAW_TARGET = 0.8  # agentstore (either face) against the raw loop

# The job body, the same for every contender (psycopg's, procrastinate's and pgqueuer's
# placeholders).
BENCH_LOG = "CREATE TABLE bench_log (job_id text NOT NULL)"
LOG_JOB = "INSERT INTO bench_log (job_id) VALUES (%s)"
PROCRASTINATE_LOG_JOB = "INSERT INTO bench_log (job_id) VALUES (%(job_id)s)"
PGQUEUER_LOG_JOB = "INSERT INTO bench_log (job_id) VALUES ($1)"
PROCRASTINATE_TASK = "bench_job"
PGQUEUER_ENTRYPOINT = "bench_job"

# What agentstore runs per task, written by hand for the raw loop: the claim
# (tasks.claim_next), the completion (tasks.complete: the task, its attempt's record and
# its journal event) and the two fused (tasks.complete_and_claim). Every column of a
# task comes back, as the library reads them to build its records. A claim first rescues
# tasks whose lease expired (none does here, but the statement looks, as the library's).
TASK_COLUMNS = (
    "id, run_id, title, objective, acceptance_criteria, verification_steps, allowed_paths, "
    "status, position, priority, attempt, max_attempts, claimed_by, lease_expires_at, "
    "implementation_summary, blocker_signature, created_at, updated_at, available_at, "
    "retry_delay_seconds, retry_max_delay_seconds, cancel_reason"
)
ID, POSITION, ATTEMPT = 0, 8, 10  # their places in TASK_COLUMNS
CLAIMABLE = """
claimable AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE status = 'pending' AND run_id = %(run_id)s AND available_at <= now()
      AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.id = tasks.run_id AND runs.status = 'paused')
      {gate}
    ORDER BY position LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"""
CLAIM_UPDATE = f"""
UPDATE tasks SET status = 'in_progress', attempt = attempt + 1,
    claimed_by = %(worker)s, lease_expires_at = now() + %(lease)s, updated_at = now()
WHERE id IN (SELECT id FROM claimable)
RETURNING {TASK_COLUMNS}"""
CLOSED = f"""
closed AS (
    UPDATE tasks SET status = 'completed', claimed_by = NULL, lease_expires_at = NULL,
        implementation_summary = 'completed', blocker_signature = NULL, updated_at = now()
    WHERE id = %(task_id)s AND status = 'in_progress' AND attempt = %(attempt)s
    RETURNING {TASK_COLUMNS}),
attempt AS (
    INSERT INTO task_attempts (id, run_id, task_id, attempt, status, summary,
        blocker_signature, result, created_at)
    SELECT gen_random_uuid(), run_id, id, attempt, 'completed', 'completed', NULL,
        '{{}}'::jsonb, now()
    FROM closed
    ON CONFLICT DO NOTHING),
event AS (
    INSERT INTO events (run_id, ts, source, kind, message, payload, transaction_id)
    SELECT run_id, now(), 'system', 'task_completed', 'Task completed.',
        jsonb_build_object('task_id', id::text, 'attempt', attempt),
        pg_current_xact_id()::text::bigint
    FROM closed)"""
RAW_CLAIM = f"WITH {POSTGRES_RESCUE}," + CLAIMABLE.format(gate="") + CLAIM_UPDATE
RAW_COMPLETE = f"WITH{CLOSED}\nSELECT {TASK_COLUMNS} FROM closed"
# Completes the task in hand, then claims the next ones only if it did (a lost claim
# ends the loop, as nothing here can lose one).
RAW_COMPLETE_AND_CLAIM = (
    f"WITH{CLOSED}, {POSTGRES_RESCUE},"
    + CLAIMABLE.format(gate="AND EXISTS (SELECT 1 FROM closed)")
    + CLAIM_UPDATE
)


@dataclass(frozen=True)
class Drain:
    """What a worker process gets: the database (a SQLAlchemy URL), how many jobs to
    take at a time, and for agentstore and the raw loop the run whose tasks it drains."""

    url: str
    batch: int
    run_id: str = ""

    @property
    def dsn(self) -> str:
        return raw_postgres_dsn(self.url)


# -- agentstore -------------------------------------------------------------------------


def plan_tasks(url: str, jobs: int) -> tuple[str, list[str]]:
    """A run with ``jobs`` pending tasks (agentstore and the raw loop): its id, the
    task ids."""
    with AgentStore.open(url) as store:
        run = store.runs.create("benchmark", "/bench")
        drafts = [TaskDraft(f"job {n}", "benchmark") for n in range(jobs)]
        tasks = store.tasks.replace_pending(run.id, drafts)
    return str(run.id), [str(task.id) for task in tasks]


def worker_options(drain: Drain) -> dict[str, Any]:
    """The worker's settings on either face. ``listen=False``: every task is planned
    before the clock starts, so NOTIFY has nothing to wake."""
    return {
        "run_id": uuid.UUID(drain.run_id),
        "concurrency": drain.batch,  # a worker claims no more than it has free slots
        "batch": drain.batch,
        "listen": False,
    }


def agentstore_work(drain: Drain, ready: Ready) -> None:
    run_id = uuid.UUID(drain.run_id)
    with psycopg.connect(drain.dsn, autocommit=True) as log, AgentStore.open(drain.url) as store:

        def handler(context: TaskContext) -> None:
            log.execute(LOG_JOB, (str(context.task.id),))

        store.runs.get(run_id)  # connect before the clock starts
        worker = Worker(store, handler, **worker_options(drain))
        ready()
        worker.run(until_idle=True)


def agentstore_async_work(drain: Drain, ready: Ready) -> None:
    asyncio.run(_agentstore_async(drain, ready))


async def _agentstore_async(drain: Drain, ready: Ready) -> None:
    run_id = uuid.UUID(drain.run_id)
    log = await psycopg.AsyncConnection.connect(drain.dsn, autocommit=True)
    async with log, AsyncAgentStore.open(drain.url) as store:

        async def handler(context: TaskContext) -> None:
            await log.execute(LOG_JOB, (str(context.task.id),))

        await store.runs.get(run_id)  # connect before the clock starts
        worker = Worker(store, handler, **worker_options(drain))
        ready()  # blocks the event loop, on which nothing runs yet
        await worker.run_async(until_idle=True)


# -- raw psycopg ------------------------------------------------------------------------


def raw_work(drain: Drain, ready: Ready) -> None:
    """Claim ``batch`` tasks; run and complete each; the last one's completion also
    claims the next ``batch``, until a claim comes back empty."""
    claim = {
        "run_id": uuid.UUID(drain.run_id),
        "worker": f"raw-{os.getpid()}",
        "lease": LEASE,
        "limit": drain.batch,
    }
    with psycopg.connect(drain.dsn, autocommit=True) as pg:
        ready()
        claimed = pg.execute(RAW_CLAIM, claim).fetchall()
        while claimed:
            claimed.sort(key=lambda task: task[POSITION])  # plan order: RETURNING has none
            *first, last = claimed
            for task in first:
                pg.execute(LOG_JOB, (str(task[ID]),))
                held = {"task_id": task[ID], "attempt": task[ATTEMPT]}
                if pg.execute(RAW_COMPLETE, held).fetchone() is None:
                    raise RuntimeError(f"lost the claim on task {task[ID]}")
            pg.execute(LOG_JOB, (str(last[ID]),))
            held = {"task_id": last[ID], "attempt": last[ATTEMPT]}
            claimed = pg.execute(RAW_COMPLETE_AND_CLAIM, {**claim, **held}).fetchall()


# -- procrastinate ----------------------------------------------------------------------


async def _procrastinate_job(context: JobContext) -> None:
    await context.app.connector.execute_query_async(
        PROCRASTINATE_LOG_JOB, job_id=str(context.job.id)
    )


def procrastinate_app(dsn: str) -> tuple[App, Task[Any, Any, Any]]:
    """An app on ``dsn`` with the benchmark's task (each process builds its own)."""
    app = App(connector=PsycopgConnector(conninfo=dsn))
    task = app.task(name=PROCRASTINATE_TASK, pass_context=True)(_procrastinate_job)
    return app, task


def procrastinate_enqueue(url: str, jobs: int) -> tuple[str, list[str]]:
    async def defer() -> list[int]:
        app, task = procrastinate_app(raw_postgres_dsn(url))
        async with app.open_async():
            return await task.batch_defer_async(*({} for _ in range(jobs)))

    return "", [str(job_id) for job_id in asyncio.run(defer())]


def procrastinate_work(drain: Drain, ready: Ready) -> None:
    async def work() -> None:
        app, _ = procrastinate_app(drain.dsn)
        async with app.open_async():  # opens its pool before the clock starts
            ready()
            await app.run_worker_async(
                concurrency=1, wait=False, listen_notify=False, install_signal_handlers=False
            )

    asyncio.run(work())


# -- pgqueuer ---------------------------------------------------------------------------


async def pgqueuer_queries(dsn: str) -> tuple[asyncpg.Connection, Queries]:
    """pgqueuer on one asyncpg connection: its connection (to close) and queries.

    Not its psycopg driver: there the driver's NOTIFY watcher holds the connection for up
    to a second at a time while it waits for a notification (the first jobs' bodies
    waited 1 s each), and a drain ended some 7 s after its last job: about 100 jobs/s
    where asyncpg gives 650 (W=1, batch 1)."""
    connection = await asyncpg.connect(dsn)
    return connection, Queries(AsyncpgDriver(connection))


def pgqueuer_enqueue(url: str, jobs: int) -> tuple[str, list[str]]:
    async def enqueue() -> list[Any]:
        connection, queries = await pgqueuer_queries(raw_postgres_dsn(url))
        try:
            return await queries.enqueue([PGQUEUER_ENTRYPOINT] * jobs, [None] * jobs, [0] * jobs)
        finally:
            await connection.close()

    return "", [str(job_id) for job_id in asyncio.run(enqueue())]


def pgqueuer_work(drain: Drain, ready: Ready) -> None:
    async def work() -> None:
        connection, queries = await pgqueuer_queries(drain.dsn)
        try:
            manager = QueueManager(queries)

            @manager.entrypoint(PGQUEUER_ENTRYPOINT)
            async def job(job: Job) -> None:
                await queries.driver.execute(PGQUEUER_LOG_JOB, str(job.id))

            ready()
            # Its defaults otherwise: no cap on the jobs in flight (the smallest cap
            # allowed, twice the batch, made it slower: 490 against 650 jobs/s, W=1 b=1).
            await manager.run(batch_size=drain.batch, mode=QueueExecutionMode.drain)
        finally:
            await connection.close()

    asyncio.run(work())


# -- the contenders ---------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """A way to drain the jobs: how to enqueue them (in the benchmark's process: the
    run id if any, the job ids), how one worker process drains them, the tables emptied
    before each drain (and analyzed once the jobs are in), and the ids the queue marks
    done."""

    name: str
    enqueue: Callable[[str, int], tuple[str, list[str]]]
    work: Callable[[Drain, Ready], None]
    tables: tuple[str, ...]
    done: str
    batches: tuple[int, ...] = (1, 10)


TASKS_DONE = "SELECT id::text FROM tasks WHERE status = 'completed' AND attempt = 1"
AGENTSTORE_TABLES = ("runs", "tasks", "task_attempts", "events")
CONTENDERS = {
    contender.name: contender
    for contender in (
        Contender("agentstore", plan_tasks, agentstore_work, AGENTSTORE_TABLES, TASKS_DONE),
        Contender(
            "agentstore async", plan_tasks, agentstore_async_work, AGENTSTORE_TABLES, TASKS_DONE
        ),
        Contender(
            "procrastinate",
            procrastinate_enqueue,
            procrastinate_work,
            ("procrastinate_jobs", "procrastinate_events", "procrastinate_workers"),
            "SELECT id::text FROM procrastinate_jobs WHERE status = 'succeeded'",
            batches=(1,),  # it fetches one job at a time
        ),
        Contender(
            "pgqueuer",
            pgqueuer_enqueue,
            pgqueuer_work,
            ("pgqueuer", "pgqueuer_log", "pgqueuer_statistics"),
            # A finished job leaves the queue table for the log.
            "SELECT job_id::text FROM pgqueuer_log WHERE status = 'successful'",
        ),
        Contender("raw psycopg", plan_tasks, raw_work, AGENTSTORE_TABLES, TASKS_DONE),
    )
}
PEERS = ("procrastinate", "pgqueuer")


def install(url: str) -> None:
    """The peers' schemas (through their own APIs) and ``bench_log``, in a database
    agentstore migrated."""

    async def peers() -> None:
        app, _ = procrastinate_app(raw_postgres_dsn(url))
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
        connection, queries = await pgqueuer_queries(raw_postgres_dsn(url))
        try:
            await queries.install()
        finally:
            await connection.close()

    asyncio.run(peers())
    with psycopg.connect(raw_postgres_dsn(url), autocommit=True) as pg:
        pg.execute(BENCH_LOG)


# -- a drain ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    jobs_per_second: float
    twice: int  # job bodies run more than once (or for a job never enqueued)
    lost: int  # jobs whose body never ran, or that the queue did not mark done


def drain_once(contender: Contender, url: str, jobs: int, workers: int, batch: int) -> Outcome:
    """Empty the queue, enqueue ``jobs`` jobs, drain them with ``workers`` processes,
    and check exactly-once."""
    with psycopg.connect(raw_postgres_dsn(url), autocommit=True) as pg:
        pg.execute(f"TRUNCATE bench_log, {', '.join(contender.tables)} CASCADE")
    run_id, job_ids = contender.enqueue(url, jobs)
    with psycopg.connect(raw_postgres_dsn(url), autocommit=True) as pg:
        pg.execute(f"ANALYZE {', '.join(contender.tables)}")
    drain = Drain(url, batch, run_id)
    work = functools.partial(contender.work, drain)
    elapsed = drain_in_processes(work, workers, contender.name)
    with psycopg.connect(raw_postgres_dsn(url), autocommit=True) as pg:
        logged = [row[0] for row in pg.execute("SELECT job_id FROM bench_log")]
        done = {row[0] for row in pg.execute(contender.done)}
    expected = set(job_ids)
    twice = len(logged) - len(set(logged) & expected)
    lost = len(expected - (set(logged) & done))
    return Outcome(jobs / elapsed, twice, lost)


# -- the figures ------------------------------------------------------------------------


def measure(
    context: Context, url: str, jobs: int, workers: int, batch: int
) -> dict[str, tuple[float, int, int]]:
    """Median jobs/s of ``context.repeat`` drains for each contender running at this
    batch, alternating the contenders inside each repeat so that drift on a noisy
    machine falls on all; with the total of jobs run twice and lost over every drain."""
    names = [name for name, c in CONTENDERS.items() if batch in c.batches]
    outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
    for _ in range(context.repeat):
        for name in names:
            outcomes[name].append(drain_once(CONTENDERS[name], url, jobs, workers, batch))
    return {
        name: (
            median([o.jobs_per_second for o in runs]),
            sum(o.twice for o in runs),
            sum(o.lost for o in runs),
        )
        for name, runs in outcomes.items()
    }


def report(context: Context, workers: int, batch: int, figures: dict[str, Any]) -> None:
    """Three rows: agentstore against the best peer, and each face against raw."""
    speed = {name: figure[0] for name, figure in figures.items()}
    raw = speed["raw psycopg"]
    best = max((name for name in PEERS if name in speed), key=speed.__getitem__)
    judged = not context.quick
    setting = f"W={workers} batch={batch}"
    peers = ", ".join(f"{name} {speed[name]:,.0f}" for name in PEERS if name in speed)
    caveats = ""
    if batch > 1:
        caveats = (
            "; procrastinate runs at batch 1 only (it fetches one job at a time); "
            f"agentstore's Worker runs at concurrency {batch} (it claims no more tasks "
            "than it has free slots)"
        )
    context.report.add(
        Row(
            "peers",
            f"{setting}: agentstore vs best peer",
            "jobs/s",
            speed["agentstore"],
            speed[best],
            target=f">= {SPEED_TARGET:g}x best peer",
            met=speed["agentstore"] >= SPEED_TARGET * speed[best] if judged else None,
            notes=f"raw column: {best}; jobs/s: {peers}{caveats}; "
            + exactly_once_note(*figures.values(), drains=len(figures) * context.repeat),
        )
    )
    others = ", ".join(f"{name} {speed[name] / raw:.2f}x" for name in PEERS if name in speed)
    for face in ("agentstore", "agentstore async"):
        context.report.add(
            Row(
                "peers",
                f"{setting}: {face} vs raw psycopg",
                "jobs/s",
                speed[face],
                raw,
                target=f">= {RAW_TARGET:g}x raw",
                met=speed[face] >= RAW_TARGET * raw if judged else None,
                notes=f"peers vs raw: {others}" if face == "agentstore" else "",
            )
        )


def run(context: Context) -> None:
    if "postgresql" not in context.dialects:
        print("peers: PostgreSQL only (the peers do not run on SQLite); skipped")
        return
    if "sqlite" in context.dialects:
        print("peers: PostgreSQL only (the peers do not run on SQLite); SQLite skipped")
    jobs = 200 if context.quick else 2000
    url = context.databases.fresh("postgresql", "peers")
    install(url)
    for workers in (1, 2) if context.quick else (1, 2, 4):
        for batch in (1, 10):
            report(context, workers, batch, measure(context, url, jobs, workers, batch))
