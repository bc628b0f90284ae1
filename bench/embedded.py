"""Embedded queues on SQLite: agentstore against huey's ``SqliteStorage``, the queue a
Python user picks for one machine, and against the raw ``sqlite3`` loop doing agentstore's
statements, side by side in the same run.

W worker processes (1, 2, 4) drain N tasks (5,000). The task's body is the same
everywhere: one ``INSERT INTO bench_log (job_id)`` of the task's key into a separate
SQLite log file, on a ``sqlite3`` connection each worker process opens once, before the
clock starts (autocommit: each INSERT is its own transaction). Every database here, the
queues' and the log, is set up with agentstore's connection settings
(``CONNECTION_PRAGMAS``: WAL, ``synchronous=NORMAL``, a WAL checkpoint every 4,000
pages, a 30 s busy timeout, foreign keys, which huey's tables do not have): huey's
default (``fsync=None``) leaves SQLite's FULL, an fsync per commit, which buys a
durability the others do not and costs much of huey's speed (a ``huey default`` row
shows it, at the fewest workers measured). How each contender is driven:

- ``huey``: ``SqliteHuey(filename=...)`` with its defaults otherwise (results on, which
  stores nothing for a task returning None); tasks enqueued beforehand by calling the
  ``@huey.task()`` function, one ``enqueue`` (one commit) each. Each worker process runs
  huey's own consumer ``Worker.loop()`` (``huey.consumer.Worker``, as a ``process``
  worker of ``huey_consumer`` does): ``huey.dequeue()`` (a read to see whether anything
  is queued, then ``BEGIN EXCLUSIVE``, the oldest task selected and deleted, COMMIT),
  then ``huey.execute(task)`` (a read of the task's revocation keys, the body, then the
  revocation key popped: another ``BEGIN EXCLUSIVE`` transaction). The only change: where
  the worker would sleep on an empty queue, it stops (nothing is enqueued during a drain).
  Logging is left unconfigured, so huey's per-task INFO lines are not written (the
  consumer's command line would write them). ``huey default``: the same, with huey's
  own settings (SQLite's synchronous and checkpoint defaults).
- ``agentstore``: the public API, ``store.tasks.claim_next(limit=b)``, then each task's
  body and ``complete`` with its fencing token, the last one in hand completed by
  ``complete_and_claim`` (its completion and the next claim in one transaction), as a
  worker in steady state does.
- ``unfused``: the same with ``complete`` for every task and ``claim_next``
  when the hand is empty (the issue's first measurement).
- ``complete_many`` (batch 10 only): the public API settling a whole hand at once:
  ``claim_next(limit=10)``, the ten bodies, then one ``complete_many`` completing all ten
  and claiming the next ten in one transaction.
- ``worker``: ``Worker(store, handler, run_id=..., concurrency=b, batch=b,
  listen=False).run(until_idle=True)`` (a worker claims no more tasks than it has free
  slots, so batch b needs concurrency b).
- ``raw sqlite3``: a hand-written loop on one ``sqlite3`` connection per process doing
  agentstore's statements (``bench.claim``): a claim is the rescue of expired leases and
  the claim in one ``BEGIN IMMEDIATE`` transaction, a completion the fenced UPDATE, the
  attempt's record and the journal event in another, and the completion of the last task
  in hand shares its transaction with the next claim (the library's fused step).
- ``raw batched`` (batch 10 only): the same loop doing ``complete_many``'s statements:
  in one ``BEGIN IMMEDIATE`` transaction, one UPDATE ending every claim in hand, one
  ``executemany`` of the attempts' records, one of the events, the rescue and the claim.

Every drain starts from an empty log and a fresh queue (huey: a new database file;
agentstore: a new run, deleted afterwards) and is checked for exactly-once: every task's
key is in the log once, nothing else is, and the queue holds nothing undone (huey: its
task table is empty; agentstore: every task completed at attempt 1). Time runs from a
barrier that every process reaches connected and ready until the last process returns.
Figures are medians of ``--repeat`` drains; the contenders alternate inside each repeat.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from huey import SqliteHuey
from huey.consumer import Worker as HueyWorker

from agentstore import AgentStore, Completion, TaskDraft
from agentstore.backends.sqlite import CONNECTION_PRAGMAS
from agentstore.worker import TaskContext, Worker
from bench.claim import (
    ATTEMPT,
    POSITION,
    Statements,
    sqlite_claim,
    sqlite_complete,
    sqlite_complete_many,
)
from bench.harness import Context, Ready, Row, drain_in_processes, median, raw_sqlite_connect

LEASE = timedelta(minutes=5)
HUEY_TARGET = 1.5  # agentstore (the API, the worker) against huey
RAW_TARGET = 0.8  # agentstore's API against the raw loop
LOG_TABLE = "CREATE TABLE bench_log (job_id TEXT NOT NULL)"
LOG_JOB = "INSERT INTO bench_log (job_id) VALUES (?)"

# -- the body ---------------------------------------------------------------------------


class _Log:
    """The worker process's connection to the log file, opened once per process. The
    worker's handlers run in threads: a lock keeps them off the connection at once (the
    same lock, uncontended, for everyone)."""

    connection: sqlite3.Connection | None = None
    lock = threading.Lock()


def open_log(path: str) -> None:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in CONNECTION_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    _Log.connection = connection


def body(key: str) -> None:
    """Every contender's task: one INSERT of its key into the log."""
    assert _Log.connection is not None
    with _Log.lock:
        _Log.connection.execute(LOG_JOB, (key,))


def new_log(path: Path) -> None:
    """An empty log file, switched to WAL before the workers open it (switching a new
    file from several processes at once can fail on the lock)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        for pragma in CONNECTION_PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        connection.execute(LOG_TABLE)


def logged(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return [row[0] for row in connection.execute("SELECT job_id FROM bench_log")]


@dataclass(frozen=True)
class Drain:
    """What a worker process gets: the log file, the queue (huey's database file, or
    agentstore's database URL and the run whose tasks it drains), and how many tasks to
    take at a time."""

    log: str
    queue: str
    batch: int
    run_id: str = ""


# -- huey -------------------------------------------------------------------------------


def huey_app(path: str) -> tuple[SqliteHuey, Any]:
    """huey on the database file ``path`` with the benchmark's task (each process builds
    its own, as each imports the application's module)."""
    huey = SqliteHuey("bench", filename=path)

    @huey.task(name="bench_job")
    def job(key: str) -> None:
        body(key)

    return huey, job


class _Drained(Exception):
    """huey's worker found the queue empty: the drain is over."""


class DrainingWorker(HueyWorker):
    """huey's consumer worker, stopping where it would sleep on an empty queue."""

    def sleep(self) -> None:
        raise _Drained


def huey_enqueue(drain: Drain, tasks: int, pragmas: tuple[str, ...]) -> list[str]:
    huey, job = huey_app(drain.queue)
    for pragma in pragmas:
        huey.storage.conn.execute(f"PRAGMA {pragma}")
    keys = [f"job-{n}" for n in range(tasks)]
    for key in keys:
        job(key)
    huey.storage.close()  # the consumer's processes must not share it (huey does so)
    return keys


def huey_work(drain: Drain, ready: Ready, pragmas: tuple[str, ...]) -> None:
    huey, _ = huey_app(drain.queue)
    for pragma in pragmas:
        huey.storage.conn.execute(f"PRAGMA {pragma}")
    # The consumer's defaults: first idle delay 0.1 s, backoff 1.15, at most 10 s.
    worker = DrainingWorker(huey, threading.Event(), 0.1, 10.0, 1.15)
    worker.initialize()
    ready()
    with contextlib.suppress(_Drained):
        while True:
            worker.loop()
    huey.storage.close()


def huey_undone(drain: Drain) -> int:
    """Tasks huey still holds after a drain."""
    huey, _ = huey_app(drain.queue)
    left: int = huey.storage.queue_size() + huey.storage.schedule_size()
    huey.storage.close()
    return left


# -- agentstore -------------------------------------------------------------------------


def plan_tasks(drain: Drain, tasks: int) -> tuple[str, list[str]]:
    with AgentStore.open(drain.queue) as store:
        run = store.runs.create("benchmark", "/bench")
        planned = store.tasks.replace_pending(
            run.id, [TaskDraft(f"job {n}", "benchmark") for n in range(tasks)]
        )
    return str(run.id), [str(task.id) for task in planned]


def agentstore_undone(drain: Drain) -> int:
    """Tasks of the run not completed at their first attempt; the run is then deleted."""
    run_id = uuid.UUID(drain.run_id)
    with AgentStore.open(drain.queue) as store:
        final = store.tasks.list(run_id)
        store.runs.delete(run_id)
    return sum(1 for task in final if task.status != "completed" or task.attempt != 1)


def library_work(drain: Drain, ready: Ready) -> None:
    """The public API as a worker in steady state uses it: the last task in hand is
    completed together with the next claim."""
    run_id = uuid.UUID(drain.run_id)
    worker = f"api-{uuid.uuid4().hex[:8]}"
    with AgentStore.open(drain.queue) as store:
        store.runs.get(run_id)  # connect before the clock starts
        ready()
        held = store.tasks.claim_next(worker, run_id=run_id, lease=LEASE, limit=drain.batch)
        while held:
            *first, last = held
            for task in first:
                body(str(task.id))
                store.tasks.complete(task.id, "done", attempt=task.attempt)
            body(str(last.id))
            handoff = store.tasks.complete_and_claim(
                last.id,
                "done",
                attempt=last.attempt,
                worker=worker,
                run_id=run_id,
                lease=LEASE,
                limit=drain.batch,
            )
            if handoff.completed is None:
                raise RuntimeError(f"lost the claim on task {last.id}")
            held = handoff.claimed


def unfused_work(drain: Drain, ready: Ready) -> None:
    """The public API one call per step: ``complete`` each task, ``claim_next`` when the
    hand is empty."""
    run_id = uuid.UUID(drain.run_id)
    worker = f"api-{uuid.uuid4().hex[:8]}"
    with AgentStore.open(drain.queue) as store:
        store.runs.get(run_id)  # connect before the clock starts
        ready()
        while held := store.tasks.claim_next(worker, run_id=run_id, lease=LEASE, limit=drain.batch):
            for task in held:
                body(str(task.id))
                store.tasks.complete(task.id, "done", attempt=task.attempt)


def batched_work(drain: Drain, ready: Ready) -> None:
    """The public API settling the whole hand at once: every task's body, then one
    ``complete_many`` completing them all and claiming the next hand."""
    run_id = uuid.UUID(drain.run_id)
    worker = f"api-{uuid.uuid4().hex[:8]}"
    with AgentStore.open(drain.queue) as store:
        store.runs.get(run_id)  # connect before the clock starts
        ready()
        held = store.tasks.claim_next(worker, run_id=run_id, lease=LEASE, limit=drain.batch)
        while held:
            for task in held:
                body(str(task.id))
            handoff = store.tasks.complete_many(
                [Completion(task.id, "done", task.attempt) for task in held],
                worker=worker,
                run_id=run_id,
                lease=LEASE,
                limit=drain.batch,
            )
            if handoff.stale:
                raise RuntimeError(f"lost the claims on tasks {handoff.stale}")
            held = handoff.claimed


def worker_work(drain: Drain, ready: Ready) -> None:
    run_id = uuid.UUID(drain.run_id)

    def handler(context: TaskContext) -> None:
        body(str(context.task.id))

    with AgentStore.open(drain.queue) as store:
        store.runs.get(run_id)  # connect before the clock starts
        worker = Worker(
            store,
            handler,
            run_id=run_id,
            concurrency=drain.batch,  # a worker claims no more than it has free slots
            batch=drain.batch,
            lease=LEASE,
            listen=False,
        )
        ready()
        worker.run(until_idle=True)


def raw_work(drain: Drain, ready: Ready) -> None:
    """agentstore's statements by hand on sqlite3, the last completion of a hand in the
    same transaction as the next claim."""
    run_id = uuid.UUID(drain.run_id)
    worker = f"raw-{uuid.uuid4().hex[:8]}"
    lite = raw_sqlite_connect(drain.queue)

    def transact(statements: Statements) -> list[list[Any]]:
        lite.execute("BEGIN IMMEDIATE")
        results = [lite.execute(sql, parameters).fetchall() for sql, parameters in statements]
        lite.execute("COMMIT")
        return results

    def claimed(results: list[list[Any]]) -> list[Any]:
        *rescued, rows = results
        assert not any(rescued), "a lease ran out during the drain"
        return sorted(rows, key=lambda row: (row[POSITION], row[0]))  # plan order

    with contextlib.closing(lite):
        ready()
        held = claimed(transact(sqlite_claim(worker, run_id, drain.batch)))
        while held:
            *first, last = held
            for row in first:
                body(str(uuid.UUID(row[0])))
                closed = transact(sqlite_complete(row))[0]
                assert closed and closed[0][ATTEMPT] == row[ATTEMPT], row[0]
            body(str(uuid.UUID(last[0])))
            results = transact(sqlite_complete(last) + sqlite_claim(worker, run_id, drain.batch))
            assert results[0], last[0]
            held = claimed(results[3:])


def raw_batched_work(drain: Drain, ready: Ready) -> None:
    """``complete_many``'s statements by hand on sqlite3: the hand's bodies, then its
    completions and the next claim in one transaction."""
    run_id = uuid.UUID(drain.run_id)
    worker = f"raw-{uuid.uuid4().hex[:8]}"
    lite = raw_sqlite_connect(drain.queue)

    def transact(statements: list[tuple[str, Any]]) -> list[list[Any]]:
        lite.execute("BEGIN IMMEDIATE")
        results: list[list[Any]] = []
        for sql, parameters in statements:
            if isinstance(parameters, list):  # one executemany for the batch
                lite.executemany(sql, parameters)
                results.append([])
            else:
                results.append(lite.execute(sql, parameters).fetchall())
        lite.execute("COMMIT")
        return results

    def claimed(results: list[list[Any]]) -> list[Any]:
        *rescued, rows = results
        assert not any(rescued), "a lease ran out during the drain"
        return sorted(rows, key=lambda row: (row[POSITION], row[0]))  # plan order

    with contextlib.closing(lite):
        ready()
        held = claimed(transact(sqlite_claim(worker, run_id, drain.batch)))
        while held:
            for row in held:
                body(str(uuid.UUID(row[0])))
            completing = sqlite_complete_many(held)
            results = transact(completing + sqlite_claim(worker, run_id, drain.batch))
            assert len(results[0]) == len(held), "a claim in hand was lost"
            held = claimed(results[len(completing) :])


# -- the contenders ---------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """A way to drain the tasks: how to enqueue them (the run id if any, the keys the
    log must hold), how one worker process drains them, how many it left undone."""

    name: str
    queue: str  # "huey" (a file per drain) or "agentstore" (the benchmark's database)
    enqueue: Callable[[Drain, int], tuple[str, list[str]]]
    work: Callable[[Drain, Ready], None]
    undone: Callable[[Drain], int]
    batches: tuple[int, ...] = (1, 10)
    informative: bool = False  # judged against nothing: measured at one W only


CONTENDERS = {
    contender.name: contender
    for contender in (
        Contender(
            "huey",
            "huey",
            lambda drain, tasks: ("", huey_enqueue(drain, tasks, CONNECTION_PRAGMAS)),
            lambda drain, ready: huey_work(drain, ready, CONNECTION_PRAGMAS),
            huey_undone,
            batches=(1,),  # huey dequeues one task at a time
        ),
        Contender(
            "huey default",
            "huey",
            lambda drain, tasks: ("", huey_enqueue(drain, tasks, ())),
            lambda drain, ready: huey_work(drain, ready, ()),
            huey_undone,
            batches=(1,),
            informative=True,  # the others are judged against "huey"
        ),
        Contender("agentstore", "agentstore", plan_tasks, library_work, agentstore_undone),
        Contender("unfused", "agentstore", plan_tasks, unfused_work, agentstore_undone),
        Contender("worker", "agentstore", plan_tasks, worker_work, agentstore_undone),
        Contender("raw sqlite3", "agentstore", plan_tasks, raw_work, agentstore_undone),
        Contender(
            "complete_many", "agentstore", plan_tasks, batched_work, agentstore_undone, (10,)
        ),
        Contender(
            "raw batched", "agentstore", plan_tasks, raw_batched_work, agentstore_undone, (10,)
        ),
    )
}


def contender_work(name: str, drain: Drain, ready: Ready) -> None:
    """One worker process of contender ``name``: its own log connection, then the drain."""
    open_log(drain.log)
    CONTENDERS[name].work(drain, ready)


@dataclass(frozen=True)
class Outcome:
    tasks_per_second: float
    twice: int  # bodies run more than once (or for a key never enqueued)
    lost: int  # keys whose body never ran, or tasks the queue still holds


def drain_once(
    contender: Contender, scratch: Path, url: str, tasks: int, workers: int, batch: int
) -> Outcome:
    """A fresh log and queue, ``tasks`` tasks enqueued, drained by ``workers``
    processes, and checked for exactly-once."""
    label = uuid.uuid4().hex[:8]
    log = scratch / f"log-{label}.db"
    new_log(log)
    queue = str(scratch / f"huey-{label}.db") if contender.queue == "huey" else url
    run_id, keys = contender.enqueue(Drain(str(log), queue, batch), tasks)
    drain = Drain(str(log), queue, batch, run_id)
    work = functools.partial(contender_work, contender.name, drain)
    elapsed = drain_in_processes(work, workers, contender.name)
    runs = Counter(logged(log))
    expected = set(keys)
    twice = sum(count - 1 for count in runs.values()) + sum(
        count for key, count in runs.items() if key not in expected
    )
    lost = len(expected - set(runs)) + contender.undone(drain)
    log.unlink()
    if contender.queue == "huey":
        Path(queue).unlink()
    return Outcome(tasks / elapsed, twice, lost)


# -- the figures ------------------------------------------------------------------------

Figure = tuple[float, int, int]  # median tasks/s, bodies run twice, tasks lost


def measure(
    context: Context, scratch: Path, url: str, tasks: int, workers: int, informative: bool
) -> dict[tuple[str, int], Figure]:
    """Median tasks/s of ``context.repeat`` drains for each contender and batch, the
    contenders alternating inside each repeat so that drift on a noisy machine falls on
    all; with the totals of bodies run twice and tasks lost over every drain."""
    ways = [
        (name, batch)
        for name, c in CONTENDERS.items()
        if informative or not c.informative
        for batch in c.batches
    ]
    outcomes: dict[tuple[str, int], list[Outcome]] = {way: [] for way in ways}
    for _ in range(context.repeat):
        for name, batch in ways:
            outcomes[name, batch].append(
                drain_once(CONTENDERS[name], scratch, url, tasks, workers, batch)
            )
    return {
        way: (
            median([o.tasks_per_second for o in runs]),
            sum(o.twice for o in runs),
            sum(o.lost for o in runs),
        )
        for way, runs in outcomes.items()
    }


def exactly_once_note(*figures: Figure, drains: int) -> str:
    twice = sum(f[1] for f in figures)
    lost = sum(f[2] for f in figures)
    verdict = "exactly once" if twice == 0 and lost == 0 else "NOT EXACTLY ONCE"
    return f"{verdict}: {twice} double claims, {lost} lost in {drains} drains"


def report(context: Context, workers: int, figures: dict[tuple[str, int], Figure]) -> None:
    """Per batch: the API and the worker against huey, the API (and, unjudged, the
    unfused calls and the worker) against the raw loop."""
    judged = not context.quick
    huey = figures["huey", 1]
    drains = context.repeat
    for batch in (1, 10):
        setting = f"W={workers} batch={batch}"
        speed = {name: figures[name, batch][0] for name in CONTENDERS if (name, batch) in figures}
        raw = speed["raw sqlite3"]
        others = (
            f"tasks/s: huey {huey[0]:,.0f}, unfused {speed['unfused']:,.0f}, raw sqlite3 {raw:,.0f}"
        )
        for name in ("agentstore", "worker"):
            context.report.add(
                Row(
                    "embedded",
                    f"{setting}: {name} vs huey",
                    "tasks/s",
                    speed[name],
                    huey[0],
                    target=f">= {HUEY_TARGET:g}x huey",
                    met=speed[name] >= HUEY_TARGET * huey[0] if judged else None,
                    notes="raw column: huey SqliteStorage (it dequeues one at a time); "
                    + exactly_once_note(figures[name, batch], huey, drains=2 * drains),
                )
            )
        context.report.add(
            Row(
                "embedded",
                f"{setting}: agentstore vs raw sqlite3",
                "tasks/s",
                speed["agentstore"],
                raw,
                target=f">= {RAW_TARGET:g}x raw",
                met=speed["agentstore"] >= RAW_TARGET * raw if judged else None,
                notes=f"{others}; "
                + exactly_once_note(figures["raw sqlite3", batch], drains=drains),
            )
        )
        for name, what in (("unfused", "unfused API"), ("worker", "worker")):
            context.report.add(
                Row(
                    "embedded",
                    f"{setting}: {what} vs raw sqlite3",
                    "tasks/s",
                    speed[name],
                    raw,
                    notes=exactly_once_note(figures[name, batch], drains=drains),
                )
            )
    report_batched(context, workers, figures)


def report_batched(context: Context, workers: int, figures: dict[tuple[str, int], Figure]) -> None:
    """``complete_many`` (a whole hand of 10 settled with the next claim) against huey
    and against the raw loop doing its statements."""
    judged = not context.quick
    huey, batched = figures["huey", 1], figures["complete_many", 10]
    raw = figures["raw batched", 10]
    setting = f"W={workers} batch=10"
    context.report.add(
        Row(
            "embedded",
            f"{setting}: API complete_many vs huey",
            "tasks/s",
            batched[0],
            huey[0],
            target=f">= {HUEY_TARGET:g}x huey",
            met=batched[0] >= HUEY_TARGET * huey[0] if judged else None,
            notes="raw column: huey SqliteStorage; "
            + exactly_once_note(batched, huey, drains=2 * context.repeat),
        )
    )
    context.report.add(
        Row(
            "embedded",
            f"{setting}: API complete_many vs raw batched",
            "tasks/s",
            batched[0],
            raw[0],
            target=f">= {RAW_TARGET:g}x raw",
            met=batched[0] >= RAW_TARGET * raw[0] if judged else None,
            notes="raw column: sqlite3 doing complete_many's statements; "
            + exactly_once_note(raw, drains=context.repeat),
        )
    )


def report_huey_default(
    context: Context, workers: int, figures: dict[tuple[str, int], Figure]
) -> None:
    default, huey = figures["huey default", 1], figures["huey", 1]
    context.report.add(
        Row(
            "embedded",
            f"W={workers}: huey default vs huey",
            "tasks/s",
            default[0],
            huey[0],
            notes="huey as configured by default: SQLite's synchronous=FULL, an fsync per "
            "commit, and its checkpoint every 1,000 pages (the raw column and the rows above: "
            "synchronous=NORMAL and every 4,000 pages, as agentstore); "
            + exactly_once_note(default, drains=context.repeat),
        )
    )


def run(context: Context) -> None:
    if "sqlite" not in context.dialects:
        print("embedded: SQLite only (an embedded queue); skipped")
        return
    tasks = 100 if context.quick else 5000
    url = context.databases.fresh("sqlite", "embedded")
    scratch = context.databases.scratch
    worker_counts = (2,) if context.quick else (1, 2, 4)
    for workers in worker_counts:
        # huey with its defaults is shown once, at the fewest workers.
        figures = measure(context, scratch, url, tasks, workers, workers == worker_counts[0])
        report(context, workers, figures)
        if workers == worker_counts[0]:
            report_huey_default(context, workers, figures)
