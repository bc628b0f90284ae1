"""The worker in real processes: exactly once with a worker killed mid-task (rescued by
the next claim, nobody calls ``requeue_expired``), and the ``agentstore worker`` command
draining a run and stopping on SIGTERM."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentstore import AgentStore, RunRecord, TaskDraft, TaskStatus
from tests.support.handlers import work
from tests.support.task_workers import create_work_log, kill, read_work_log

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")
REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: object, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_eight_worker_processes_do_every_task_once_with_one_killed_mid_task(
    sync_store: AgentStore, run: RunRecord, db_url: str, face: str
) -> None:
    store = sync_store
    create_work_log(store)
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(2000)])
    doomed = SPAWN.Process(target=work, args=(db_url, str(run.id), face, "hang", 1.5))
    doomed.start()
    wait_for(lambda: any(row.outcome == "claimed" for row in read_work_log(store)))
    kill(doomed.pid)  # type: ignore[arg-type]
    doomed.join()
    workers = [
        SPAWN.Process(target=work, args=(db_url, str(run.id), face, "log_it", 60)) for _ in range(8)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=600)
        assert process.exitcode == 0

    tasks = store.tasks.list(run.id)
    assert {task.status for task in tasks} == {TaskStatus.COMPLETED}
    log = read_work_log(store)
    done = Counter(row.task_id for row in log if row.outcome == "completed")
    assert len(done) == 2000 and set(done.values()) == {1}
    [lost] = [row for row in log if row.outcome == "claimed"]
    rescued = store.tasks.get(lost.task_id)
    assert rescued.attempt == 2
    kinds = [event.kind for event in store.events.list(run.id, limit=5000)]
    assert kinds.count("lease_expired_requeued") == 1


def command(db_url: str, run: RunRecord, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WORK_LOG_URL": db_url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentstore",
            "worker",
            "tests.support.handlers:slowly",
            "--url",
            db_url,
            "--run",
            str(run.id),
            "--concurrency",
            "2",
            "--lease",
            "10s",
            "--poll",
            "100ms",
            *options,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_worker_command_drains_a_run_and_stops_on_sigterm(
    sync_store: AgentStore, run: RunRecord, db_url: str
) -> None:
    store = sync_store
    create_work_log(store)
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(60)])
    process = command(db_url, run, "--grace", "5s")
    wait_for(lambda: len(store.tasks.list(run.id, ["completed"])) >= 5)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "claimed" in out
    assert store.tasks.list(run.id, ["in_progress"]) == []
    finished = len(store.tasks.list(run.id, ["completed"]))
    assert 5 <= finished < 60

    again = command(db_url, run, "--until-idle")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert {task.status for task in store.tasks.list(run.id)} == {TaskStatus.COMPLETED}
    done = Counter(row.task_id for row in read_work_log(store) if row.outcome == "completed")
    assert len(done) == 60 and set(done.values()) == {1}
