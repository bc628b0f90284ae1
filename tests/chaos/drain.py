"""The chaos drain: worker processes (``agentstore worker``) drain a run while faults are
injected: workers SIGKILLed (and replaced) at random moments and at chosen ones (after a
claim, inside a completion's transaction, before and after its COMMIT: see
``kill_points``), frozen with SIGSTOP for longer than their lease, every server
connection terminated (``pg_terminate_backend``), and PostgreSQL restarted (fast) and
crashed (immediate) on a durable server (fsync on).

The invariants, checked when the run is drained: every task completed, its completion
journalled exactly once, none lost, none left held; stale completions were refused (the
workers count them); SQLite's ``integrity_check`` is ok; no exception outside
``agentstore.errors`` reached a worker (each stopped cleanly, no traceback).

    python -m tests.chaos.drain --dialect postgresql --tasks 5000 --workers 6   # make chaos
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

import agentstore
from agentstore import AgentStore, TaskDraft
from agentstore.errors import AgentStoreError
from agentstore.models import Event, Task
from tests.chaos import kill_points
from tests.support.postgres import LocalCluster, durable_cluster, kill_connections

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2.0


@dataclass
class Figures:
    dialect: str
    tasks: int
    workers: int
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    double_completions: int = 0
    lost: int = 0
    left_held: int = 0
    unjournalled: int = 0  # completed without a completion in the journal
    stale_rejections: int = 0
    integrity: str = "ok"
    worker_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.double_completions == 0
            and self.left_held == 0
            and self.unjournalled == 0
            and self.integrity == "ok"
            and not self.worker_failures
        )

    def line(self) -> str:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items()))
        return (
            f"[chaos {self.dialect}] {self.tasks} tasks, {self.workers} workers, "
            f"{self.seconds:.1f} s; faults: {faults or 'none'}; completed {self.completed}, "
            f"double completions {self.double_completions}, lost {self.lost}, "
            f"left held {self.left_held}, unjournalled {self.unjournalled}, "
            f"stale completions refused {self.stale_rejections}, "
            f"integrity {self.integrity}, worker failures {len(self.worker_failures)}"
        )


@contextlib.contextmanager
def database(dialect: str) -> Iterator[tuple[str, LocalCluster | None]]:
    """A migrated database: a SQLite file, or a database on a durable PostgreSQL."""
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="agentstore-chaos-") as directory:
            url = f"sqlite:///{Path(directory) / 'chaos.db'}"
            agentstore.migrate(url)
            yield url, None
        return
    with durable_cluster() as cluster:
        admin = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql("CREATE DATABASE chaos")
        admin.dispose()
        url = make_url(cluster.url).set(database="chaos").render_as_string(hide_password=False)
        agentstore.migrate(url)
        yield url, cluster


class Workers:
    """The drain's worker processes (``agentstore worker``), numbered in start order, each
    with its output in ``logs``. A worker may be armed to kill itself at one of the
    moments of ``kill_points``; the drain leaves it alone until it has."""

    def __init__(self, url: str, run_id: str, logs: Path, points: list[str]) -> None:
        self.url, self.run_id, self.logs = url, run_id, logs
        self.points = points  # still to arm, last first
        self.rng = random.Random(os.environ.get("CHAOS_SEED"))
        self.running: list[subprocess.Popen[str]] = []
        self.number: dict[int, int] = {}  # pid -> worker number
        self.armed: dict[int, str] = {}  # pid -> its kill point
        self.stopped: dict[int, subprocess.Popen[str]] = {}  # number -> stopped by us

    @property
    def count(self) -> int:
        return len(self.number)

    def start(self) -> None:
        number = self.count
        env = dict(os.environ)
        env.pop("CHAOS_KILL", None)
        point = self.points.pop() if self.points else None
        if point is not None:  # dies the n-th time there: after a few tasks
            env["CHAOS_KILL"] = f"{point}:{self.rng.randint(1, 10)}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentstore",
                "--json",
                "worker",
                "tests.chaos.kill_points:job",
                "--url",
                self.url,
                "--run",
                self.run_id,
                "--concurrency",
                "2",
                "--lease",
                f"{LEASE_SECONDS}s",
                "--poll",
                "100ms",
                "--grace",
                "3s",
            ],
            cwd=REPO,
            env=env,
            stdout=(self.logs / f"worker-{number}.out").open("w"),
            stderr=(self.logs / f"worker-{number}.err").open("w"),
            text=True,
        )
        self.running.append(process)
        self.number[process.pid] = number
        if point is not None:
            self.armed[process.pid] = point

    def err(self, process: subprocess.Popen[str]) -> str:
        return (self.logs / f"worker-{self.number[process.pid]}.err").read_text()

    def killed_at(self, process: subprocess.Popen[str]) -> str | None:
        """The kill point ``process`` was armed with, if it died there."""
        point = self.armed.get(process.pid)
        return point if point and f"chaos kill: {point}" in self.err(process) else None

    def kill(self, victim: subprocess.Popen[str]) -> None:
        """SIGKILL ``victim`` (not armed) at a random moment and start another in its place."""
        assert victim.pid not in self.armed
        victim.kill()
        victim.wait()
        self.running.remove(victim)
        self.start()

    def reap(self, figures: Figures, *, replace: bool) -> None:
        """Count the workers that died on their own: killed at their kill point, or
        failed (a worker never dies of an error otherwise)."""
        for process in [p for p in self.running if p.poll() is not None]:
            self.running.remove(process)
            point = self.killed_at(process)
            self.armed.pop(process.pid, None)
            if point:
                figures.faults[f"kill {point}"] += 1
            else:
                number = self.number[process.pid]
                figures.worker_failures.append(
                    f"worker {number} died (exit {process.returncode}): "
                    f"{self.err(process).strip().splitlines()[-3:]}"
                )
            if replace:
                self.start()

    def stop(self, figures: Figures) -> None:
        """SIGTERM every worker, once it has started (one just replaced may not have),
        and wait for it to stop."""
        for process in self.running:
            deadline = time.monotonic() + 60
            while " started" not in self.err(process) and time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                time.sleep(0.05)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                figures.worker_failures.append(f"worker {process.pid} did not stop")
        for process in self.running:  # one may have reached its kill point meanwhile
            if point := self.killed_at(process):
                figures.faults[f"kill {point}"] += 1
            else:
                self.stopped[self.number[process.pid]] = process


def thaw(process: subprocess.Popen[str]) -> None:
    """SIGCONT a frozen worker, unless it is gone: it may have reached its kill point
    just before it was frozen."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGCONT)


def unfinished(store: AgentStore, run_id: Any) -> int | None:
    """How many tasks of the run are not completed; None while the database is away."""
    try:
        return sum(1 for task in store.tasks.list(run_id) if task.status.value != "completed")
    except AgentStoreError:
        return None


def drain(dialect: str, tasks: int, workers: int, budget_seconds: float) -> Figures:
    figures = Figures(dialect, tasks, workers)
    rng = random.Random(os.environ.get("CHAOS_SEED"))
    kinds = ["sigkill", "sigstop", "terminate"]
    # Workers that kill themselves at a chosen moment: each moment at least once.
    targeted = max(len(kill_points.POINTS), tasks // 300)
    # Armed last first: the first workers get every moment between them.
    points = [rng.choice(kill_points.POINTS) for _ in range(targeted - len(kill_points.POINTS))]
    points += rng.sample(kill_points.POINTS, len(kill_points.POINTS))
    with database(dialect) as (url, cluster), tempfile.TemporaryDirectory() as logs_dir:
        if cluster is not None:
            kinds += ["restart", "crash"]
        with AgentStore.open(url) as store:
            run = store.runs.create("chaos", "/chaos", "running")
            drafts = [TaskDraft(f"t{n}", "o", max_attempts=100) for n in range(tasks)]
            store.tasks.replace_pending(run.id, drafts)
            started = time.monotonic()
            pool = Workers(url, str(run.id), Path(logs_dir), points)
            for _ in range(workers):
                pool.start()
            schedule = rng.sample(kinds, len(kinds))
            frozen: list[tuple[subprocess.Popen[str], float]] = []
            restarts = 0
            while time.monotonic() - started < budget_seconds:
                time.sleep(rng.uniform(0.3, 0.8))
                for process, until in list(frozen):
                    if time.monotonic() >= until:
                        thaw(process)
                        frozen.remove((process, until))
                pool.reap(figures, replace=True)
                left = unfinished(store, run.id)
                if left == 0:
                    break
                # Every kind once first (in a random order), then at random.
                kind = schedule.pop() if schedule else rng.choice(kinds)
                if kind in ("restart", "crash") and restarts >= max(2, tasks // 1000):
                    kind = "terminate"
                # An armed worker is left alone to reach its own moment: killed or
                # frozen, it might not before the drain ends.
                victims = [
                    p
                    for p in pool.running
                    if p.pid not in pool.armed and all(p is not f for f, _ in frozen)
                ]
                if kind in ("sigkill", "sigstop") and not victims:
                    schedule.append(kind)  # the next round, once a worker is free
                    kind = "none"
                if kind == "sigkill":
                    pool.kill(rng.choice(victims))
                elif kind == "sigstop":
                    victim = rng.choice(victims)
                    os.kill(victim.pid, signal.SIGSTOP)
                    # Longer than a lease at times: its claims are rescued meanwhile.
                    frozen.append((victim, time.monotonic() + rng.uniform(0.5, 2 * LEASE_SECONDS)))
                elif kind == "terminate" and cluster is not None:
                    kill_connections(url)
                elif kind in ("restart", "crash") and cluster is not None:
                    cluster.restart("fast" if kind == "restart" else "immediate")
                    restarts += 1
                elif kind == "terminate":
                    kind = "none"  # SQLite has no server connections to cut
                figures.faults[kind] += 1
            figures.faults.pop("none", None)
            figures.seconds = time.monotonic() - started
            for process, _ in frozen:
                thaw(process)
            pool.reap(figures, replace=False)
            pool.stop(figures)
            check(store, run.id, url, figures)
        read_workers(pool, figures)
    return figures


def check(store: AgentStore, run_id: Any, url: str, figures: Figures) -> None:
    engine = store.engine
    with engine.connect() as connection:
        statuses = Counter(
            status
            for (status,) in connection.execute(sa.select(Task.status).where(Task.run_id == run_id))
        )
        completions = Counter(
            payload["task_id"]
            for (payload,) in connection.execute(
                sa.select(Event.payload).where(
                    Event.run_id == run_id, Event.kind == "task_completed"
                )
            )
        )
        if url.startswith("sqlite"):
            figures.integrity = connection.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    figures.completed = statuses["completed"]
    figures.lost = figures.tasks - statuses["completed"]
    figures.left_held = statuses["in_progress"]
    figures.double_completions = sum(1 for n in completions.values() if n > 1)
    figures.unjournalled = figures.completed - len(completions)


def read_workers(pool: Workers, figures: Figures) -> None:
    """Each worker's counters (stale completions refused) and whether it failed: a
    traceback, or a worker we stopped with SIGTERM not exiting 0."""
    for number in range(pool.count):
        out = (pool.logs / f"worker-{number}.out").read_text()
        err = (pool.logs / f"worker-{number}.err").read_text()
        if "Traceback" in err:
            figures.worker_failures.append(
                f"worker {number}: {err[err.index('Traceback') :][:800]}"
            )
        if out.strip():
            figures.stale_rejections += json.loads(out)["lost_leases"]
        process = pool.stopped.get(number)
        if process is not None and process.returncode != 0:
            last = err.strip().splitlines()[-3:]
            figures.worker_failures.append(f"worker {number} exited {process.returncode}: {last}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()
    figures = drain(args.dialect, args.tasks, args.workers, args.seconds)
    print(figures.line())
    for failure in figures.worker_failures:
        print(failure)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
