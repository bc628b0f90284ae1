"""``agentstore demo``: the main job on the embedded default, end to end.

It migrates the database, plans a run, and starts worker processes (agentstore's
``Worker``) that claim tasks, keep their leases and complete them with their fencing
tokens, recording each task's work as an execution with tool calls (one of them pauses
for a person). One worker dies holding a task on purpose: once its lease runs out, a
claim rescues the task and another worker finishes it. One task fails its first attempt
and succeeds when retried after its backoff. Then it prints the run's snapshot and the
chart of the executions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import uuid
from datetime import timedelta
from typing import Any

from agentstore.cli.chart import bar_chart, progress
from agentstore.cli.output import CommandError, subcommand
from agentstore.orchestrator import Backoff, TaskDraft
from agentstore.statuses import TaskStatus
from agentstore.store import AgentStore
from agentstore.worker import TaskContext, Worker

SCOPE = "demo"
LEASE = timedelta(seconds=2)
FLAKY = 2  # the plan position of the task whose first attempt fails
RETRY = Backoff(first=timedelta(seconds=1), cap=timedelta(seconds=5))


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    demo = subcommand(commands, "demo", "run the end-to-end demo on the database")
    demo.add_argument("--workers", type=int, default=4)
    demo.add_argument("--tasks", type=int, default=40)
    demo.set_defaults(handler=run, needs_schema=False)


def doomed_worker(url: str, schema: str | None, run_id: str) -> None:
    """Claim one task and die without a word in the middle of it, as a crashed worker
    does."""
    with AgentStore.open(url, schema=schema) as store:
        Worker(store, lambda context: os._exit(1), run_id=uuid.UUID(run_id), lease=LEASE).run()


def worker(url: str, schema: str | None, run_id: str, name: str) -> None:
    """Work the plan until every task is finished, with agentstore's worker: a dead
    worker's task is rescued by a claim once its lease runs out, and the flaky task is
    retried after its backoff. Whoever takes the plan's second task pauses once for a
    person's approval."""
    with AgentStore.open(url, schema=schema) as store:

        def handler(context: TaskContext) -> str:
            task = context.task
            with store.executions.recording(
                SCOPE, f"# {task.title}\nimplement()", trigger=("demo", {"worker": name})
            ) as rec:
                files = rec.tool(
                    "repo.files.list", {"task": task.title}, lambda a: ["a.py", "b.py"]
                )
                if task.position == FLAKY and task.attempt == 1:
                    raise RuntimeError("the build server dropped the connection")
                rec.tool("repo.files.write", {"files": files}, lambda a: len(a["files"]))
                if task.position == 1:
                    question = rec.ask("approval", purpose=f"Ship {task.title}?")
                    if question is not None:  # the person says yes at once
                        store.executions.resolve_interaction(SCOPE, question.id, {"ok": True})
                rec.log(f"{name} finished {task.title}")
                rec.result({"task": str(task.id), "files": files})
            return f"done by {name}"

        Worker(
            store,
            handler,
            run_id=uuid.UUID(run_id),
            lease=LEASE,
            name=name,
            backoff=RETRY,
            poll_interval=timedelta(milliseconds=200),
        ).run(until_idle=True)


def run(store: AgentStore, args: argparse.Namespace) -> int:
    if args.workers < 1 or args.tasks < 1:
        raise CommandError("--workers and --tasks must be at least 1")
    store.migrate()
    url = store.engine.url.render_as_string(hide_password=False)
    run = store.runs.create("demo: build a feature in small tasks", os.getcwd(), "running")
    drafts = [TaskDraft(f"task {n + 1}", f"implement step {n + 1}") for n in range(args.tasks)]
    store.tasks.replace_pending(run.id, drafts)
    print(f"run {run.id}: {args.tasks} tasks, {args.workers} workers, lease {LEASE.seconds}s")

    spawn = multiprocessing.get_context("spawn")
    doomed = spawn.Process(target=doomed_worker, args=(url, store.schema, str(run.id)))
    doomed.start()
    doomed.join()
    workers = [
        spawn.Process(target=worker, args=(url, store.schema, str(run.id), f"worker-{n + 1}"))
        for n in range(args.workers)
    ]
    for process in workers:
        process.start()
    shown = -1
    while any(process.is_alive() for process in workers):
        done = len(store.tasks.list(run.id, ["completed"]))
        if done != shown:
            progress(done, args.tasks, "tasks completed")
            shown = done
        time.sleep(0.2)
    progress(len(store.tasks.list(run.id, ["completed"])), args.tasks, "tasks completed\n")
    if any(process.exitcode != 0 for process in workers):
        raise CommandError("a demo worker failed; see its output above")
    store.runs.update(run.id, status="completed", summary="every task completed")
    report(store, run.id, args.tasks)
    return 0


def report(store: AgentStore, run_id: uuid.UUID, planned: int) -> None:
    snapshot = store.runs.snapshot(run_id)
    completed = snapshot.tasks[TaskStatus.COMPLETED]
    rescued = [task for task in completed if task.attempt > 1 and task.position != FLAKY]
    retried = [task for task in completed if task.position == FLAKY]
    print(f"\nrun {run_id} [{snapshot.run.status.value}]")
    print("tasks: " + "  ".join(f"{s.value} {len(t)}" for s, t in snapshot.tasks.items()))
    once = len(completed) == planned and len({t.id for t in completed}) == planned
    print(f"every task completed once: {'yes' if once else 'NO'} ({len(completed)}/{planned})")
    for task in rescued:
        print(
            f"rescued: {task.title}: its worker died holding it, the lease expired, and "
            f"attempt {task.attempt} was {task.implementation_summary}"
        )
    for task in retried:
        failed = store.attempts.recent(run_id, limit=planned * 3)
        first = next(a for a in failed if a.task_id == task.id and a.attempt == 1)
        print(
            f"retried: {task.title}: attempt 1 failed ({first.summary.strip().splitlines()[-1]}), "
            f"and attempt {task.attempt} completed after its backoff"
        )
    print("latest events:")
    for event in snapshot.recent_events[-5:]:
        print(f"  {event.ts:%H:%M:%S} {event.kind}: {event.message}")
    meta = store.executions.meta(SCOPE)
    print(
        f"\nexecutions in scope {SCOPE!r}: {meta.filtered}, tool calls "
        f"{sum(count for _, count in meta.top_tools)}, with an interaction {meta.with_interaction}"
    )
    print(bar_chart(meta.chart, meta.bucket_seconds))
