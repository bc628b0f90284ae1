"""Claims under real concurrency: several worker processes on one SQLite file or one
PostgreSQL database. Throughput is printed, never asserted."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from agentstore import AgentStore, RunRecord, TaskStatus
from agentstore.errors import StaleClaimError
from tests.orchestrator.conftest import drafts
from tests.support.journal_writers import write, write_and_freeze, write_and_hold
from tests.support.task_workers import (
    claim_and_hang,
    create_work_log,
    drain,
    drain_in_batches,
    kill,
    read_work_log,
)

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def store(sync_store: AgentStore) -> AgentStore:
    """The worker processes use the sync face, and so does the test's own side."""
    return sync_store


def start_workers(
    db_url: str, run: RunRecord, count: int, limit: int, stop: object = None
) -> tuple[list[multiprocessing.process.BaseProcess], object]:
    start = SPAWN.Event()
    workers = [
        SPAWN.Process(target=drain, args=(db_url, str(run.id), f"w{n}", limit, start, stop))
        for n in range(count)
    ]
    for worker in workers:
        worker.start()
    return workers, start


def join(workers: list[multiprocessing.process.BaseProcess]) -> None:
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0


@pytest.mark.parametrize("limit", [1, 10])
def test_eight_workers_drain_two_thousand_tasks_exactly_once(
    store: AgentStore, run: RunRecord, db_url: str, dialect: str, limit: int
) -> None:
    create_work_log(store)
    store.tasks.replace_pending(run.id, drafts(2000))
    workers, start = start_workers(db_url, run, 8, limit)
    time.sleep(1)  # let the interpreters start, so the workers begin together
    began = time.perf_counter()
    start.set()  # type: ignore[attr-defined]
    join(workers)
    elapsed = time.perf_counter() - began

    log = read_work_log(store)
    per_task = Counter(entry.task_id for entry in log)
    tasks = store.tasks.list(run.id)
    assert len(tasks) == 2000
    assert all(task.status == TaskStatus.COMPLETED for task in tasks)  # 0 lost
    assert all(task.attempt == 1 for task in tasks)  # 0 double claims
    assert set(per_task) == {str(task.id) for task in tasks}
    assert max(per_task.values()) == 1
    assert {entry.outcome for entry in log} == {"completed"}
    print(
        f"\n[{dialect}] 8 workers, limit={limit}: 2000 tasks in {elapsed:.2f}s "
        f"({2000 / elapsed:.0f} tasks/s); double claims 0, lost 0; "
        f"per worker {sorted(Counter(e.worker for e in log).values())}"
    )


def test_eight_workers_completing_in_batches_drain_every_task_exactly_once(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    # Each worker claims 10, then completes them and claims the next 10 in one call.
    create_work_log(store)
    store.tasks.replace_pending(run.id, drafts(400))
    start = SPAWN.Event()
    workers = [
        SPAWN.Process(target=drain_in_batches, args=(db_url, str(run.id), f"w{n}", 10, start))
        for n in range(8)
    ]
    for worker in workers:
        worker.start()
    start.set()  # type: ignore[attr-defined]
    join(workers)

    log = read_work_log(store)
    tasks = store.tasks.list(run.id)
    assert {task.status for task in tasks} == {TaskStatus.COMPLETED}  # 0 lost
    assert {task.attempt for task in tasks} == {1}  # 0 double claims
    assert sorted(entry.task_id for entry in log) == sorted(str(task.id) for task in tasks)
    assert {entry.outcome for entry in log} == {"completed"}
    attempts = store.attempts.recent(run.id, 1000)
    assert sorted((a.task_id, a.attempt) for a in attempts) == sorted((t.id, 1) for t in tasks)
    completed = [e for e in store.events.list(run.id, 1000) if e.kind == "task_completed"]
    assert sorted(e.payload["task_id"] for e in completed) == sorted(str(t.id) for t in tasks)


def test_replacing_the_plan_while_workers_complete_in_batches_deadlocks_no_one(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    # A hand completed by complete_many, a plan replaced and the held tasks requeued each
    # lock several of the same task rows. Locked in orders of their own, they deadlocked
    # on PostgreSQL (a few every ten seconds here); a worker that met one raised and
    # exited with an error.
    create_work_log(store)
    store.tasks.replace_pending(run.id, drafts(50))
    start, stop = SPAWN.Event(), SPAWN.Event()
    workers = [
        SPAWN.Process(target=drain_in_batches, args=(db_url, str(run.id), f"w{n}", 10, start, stop))
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    start.set()  # type: ignore[attr-defined]
    replaced, until = 0, time.monotonic() + 8
    while time.monotonic() < until:
        store.tasks.replace_pending(run.id, drafts(50))
        for _ in range(5):  # the workers claim again meanwhile
            store.tasks.requeue_in_progress(run.id)
        replaced += 1
    stop.set()  # type: ignore[attr-defined]
    join(workers)  # each exited cleanly: no worker met a deadlock

    assert replaced > 20
    log = read_work_log(store)
    done = {entry.task_id for entry in log if entry.outcome == "completed"}
    assert {str(t.id) for t in store.tasks.list(run.id, ["completed"])} == done
    assert len(done) == sum(entry.outcome == "completed" for entry in log)  # each once


def test_a_killed_workers_task_is_rescued_and_its_token_refused(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    create_work_log(store)
    store.tasks.replace_pending(run.id, drafts(1))
    claims = SPAWN.Queue()
    doomed = SPAWN.Process(target=claim_and_hang, args=(db_url, str(run.id), 1.0, claims))
    doomed.start()
    task_id, dead_attempt = claims.get(timeout=60)
    assert doomed.pid is not None
    kill(doomed.pid)
    doomed.join(timeout=30)

    deadline = time.monotonic() + 30
    rescued = 0
    while not rescued and time.monotonic() < deadline:
        rescued = store.tasks.requeue_expired()
        time.sleep(0.2)
    assert rescued == 1
    workers, start = start_workers(db_url, run, 1, 1)
    start.set()  # type: ignore[attr-defined]
    join(workers)

    task = store.tasks.get(uuid.UUID(task_id))
    assert task.status == TaskStatus.COMPLETED
    assert task.attempt == dead_attempt + 1
    assert [entry.worker for entry in read_work_log(store)] == ["w0"]
    with pytest.raises(StaleClaimError):
        store.tasks.complete(task.id, "back from the dead", attempt=dead_attempt)
    with pytest.raises(StaleClaimError):
        store.tasks.heartbeat(task.id, dead_attempt, timedelta(minutes=1))


def test_replacing_the_plan_while_workers_claim_loses_nothing(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    create_work_log(store)
    # Many more tasks than get done before the replace: on SQLite the replacing writer
    # competes for the write lock with four busy workers and may wait a while.
    old = store.tasks.replace_pending(run.id, drafts(2000))
    stop = SPAWN.Event()
    workers, start = start_workers(db_url, run, 4, 1, stop)
    start.set()  # type: ignore[attr-defined]
    while len(read_work_log(store)) < 40:  # replace mid-drain
        time.sleep(0.01)
    new = store.tasks.replace_pending(run.id, drafts(200))
    while store.tasks.list(run.id, ["pending", "in_progress"]):
        time.sleep(0.05)
    stop.set()
    join(workers)

    status = {task.id: task.status for task in store.tasks.list(run.id)}
    completions = Counter(e.task_id for e in read_work_log(store) if e.outcome == "completed")
    for task in old:  # done by a worker or abandoned, never both
        assert status[task.id] in (TaskStatus.COMPLETED, TaskStatus.ABANDONED)
        assert completions[str(task.id)] == (status[task.id] == TaskStatus.COMPLETED)
    for task in new:  # no new task lost, none done twice
        assert status[task.id] == TaskStatus.COMPLETED
        assert completions[str(task.id)] == 1
    abandoned = sum(status[t.id] == TaskStatus.ABANDONED for t in old)
    assert 0 < abandoned < len(old)


def test_a_follower_never_passes_over_an_event_committed_late(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    # One writer takes the next event id and keeps its transaction open; meanwhile a
    # second writer appends to the same run. If the second event became visible first,
    # a follower would move past the first one's id and never see it.
    written, release, writing = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    holder = SPAWN.Process(target=write_and_hold, args=(db_url, str(run.id), written, release))
    holder.start()
    assert written.wait(120)
    second = SPAWN.Process(target=write, args=(db_url, str(run.id), writing))
    second.start()
    assert writing.wait(120)
    # By now the second event has committed on PostgreSQL (its writer does not wait for
    # the first); on SQLite its writer waits for the database's one write lock.
    time.sleep(1)

    follower = store.events.tail(run.id)  # what a follower polling now would see
    last_seen = follower[-1].id
    release.set()  # type: ignore[attr-defined]
    for process in (holder, second):
        process.join(timeout=120)
        assert process.exitcode == 0
    follower += store.events.tail(run.id, after_id=last_seen)

    assert [event.kind for event in follower] == ["run_created", "first", "second"]


def follow(store: AgentStore, run: RunRecord) -> list[int]:
    """Every event id a follower sees, reading the run's journal page by page."""
    seen: list[int] = []
    while page := store.events.tail(run.id, after_id=seen[-1] if seen else 0, limit=50):
        seen += [event.id for event in page]
    return seen


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_frozen_writer_does_not_stop_its_runs_other_workers(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    """A process stopped (SIGSTOP) inside a transaction that journalled to the run: the
    run's workers go on completing and journalling; a follower holds back what came
    after the frozen transaction, then sees every event once it ends. (PostgreSQL: on
    SQLite any open write transaction holds the database's one write lock.)"""
    store.tasks.replace_pending(run.id, drafts(200))
    written = SPAWN.Event()
    frozen = SPAWN.Process(target=write_and_freeze, args=(db_url, str(run.id), written))
    frozen.start()
    assert written.wait(120)
    create_work_log(store)
    workers, start = start_workers(db_url, run, 4, 1)
    start.set()  # type: ignore[attr-defined]
    join(workers)  # while the writer is frozen
    assert len(store.tasks.list(run.id, ["completed"])) == 200
    completed_events = [e for e in store.events.list(run.id, 1000) if e.kind == "task_completed"]
    assert len(completed_events) == 200
    held_back = follow(store, run)
    assert len(held_back) < 202  # not past the frozen transaction

    os.kill(frozen.pid, signal.SIGCONT)  # type: ignore[arg-type]
    frozen.join(timeout=120)
    assert frozen.exitcode == 0
    every = [event.id for event in store.events.list(run.id, 1000)]
    seen = follow(store, run)
    assert sorted(seen) == sorted(every) and len(seen) == len(set(seen)) == 202
