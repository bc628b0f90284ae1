"""Worker processes for the concurrency tests. Each opens its own store (nothing is
shared with the parent but the database) and logs what it did to ``work_log``."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from agentstore import AgentStore, Completion
from agentstore.errors import StaleClaimError

WORK_LOG = sa.table(
    "work_log",
    sa.column("task_id", sa.String),
    sa.column("worker", sa.String),
    sa.column("attempt", sa.Integer),
    sa.column("outcome", sa.String),
)


def create_work_log(store: AgentStore) -> None:
    """Test scaffolding, not schema: where workers write down what they did."""
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE work_log (task_id VARCHAR(36), worker VARCHAR(64), attempt INTEGER,"
            " outcome VARCHAR(16))"
        )


def read_work_log(store: AgentStore) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(WORK_LOG)))


def _log(store: AgentStore, task_id: uuid.UUID, worker: str, attempt: int, outcome: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            sa.insert(WORK_LOG).values(
                task_id=str(task_id), worker=worker, attempt=attempt, outcome=outcome
            )
        )


def drain(url: str, run_id: str, worker: str, limit: int, start: Any, stop: Any) -> None:
    """Claim and complete tasks of the run until none is left and ``stop`` is set (or,
    when ``stop`` is None, until the first empty claim)."""
    with AgentStore.open(url) as store:
        start.wait()
        while True:
            claimed = store.tasks.claim_next(
                worker, run_id=uuid.UUID(run_id), lease=timedelta(minutes=5), limit=limit
            )
            if not claimed:
                if stop is None or stop.is_set():
                    return
                time.sleep(0.01)
                continue
            for task in claimed:
                try:
                    store.tasks.complete(task.id, f"done by {worker}", attempt=task.attempt)
                except StaleClaimError:
                    _log(store, task.id, worker, task.attempt, "stale")
                else:
                    _log(store, task.id, worker, task.attempt, "completed")


def drain_in_batches(
    url: str, run_id: str, worker: str, limit: int, start: Any, stop: Any = None
) -> None:
    """Claim ``limit`` tasks, then complete them all and claim the next ``limit`` with one
    ``complete_many``, until a claim finds nothing (and ``stop`` is set, when given);
    each task logged once its batch committed (one transaction for the batch's log)."""
    run = uuid.UUID(run_id)
    lease = timedelta(minutes=5)
    with AgentStore.open(url) as store:
        start.wait()
        while True:
            _complete_in_batches(store, run, worker, limit, lease)
            if stop is None or stop.is_set():
                return
            time.sleep(0.01)


def _complete_in_batches(
    store: AgentStore, run: uuid.UUID, worker: str, limit: int, lease: timedelta
) -> None:
    held = store.tasks.claim_next(worker, run_id=run, lease=lease, limit=limit)
    while held:
        batch = [Completion(t.id, f"done by {worker}", t.attempt) for t in held]
        handoff = store.tasks.complete_many(
            batch, worker=worker, run_id=run, lease=lease, limit=limit
        )
        entries = [(t.id, t.attempt, "completed") for t in handoff.completed]
        entries += [(task_id, 0, "stale") for task_id in handoff.stale]
        with store.engine.begin() as connection:
            connection.execute(
                sa.insert(WORK_LOG),
                [
                    {"task_id": str(t), "worker": worker, "attempt": a, "outcome": o}
                    for t, a, o in entries
                ],
            )
        held = handoff.claimed


def claim_and_hang(url: str, run_id: str, lease_seconds: float, claims: Any) -> None:
    """Claim one task, report it, then hang until killed (a worker that dies mid-task)."""
    with AgentStore.open(url) as store:
        task = store.tasks.claim_next(
            "doomed", run_id=uuid.UUID(run_id), lease=timedelta(seconds=lease_seconds)
        )[0]
        claims.put((str(task.id), task.attempt))
        while True:
            time.sleep(1)


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
