"""``agentstore runs``, ``tasks`` and ``events``: what the orchestrator's runs did."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from typing import Any

from agentstore.backends.listen import EVENTS_CHANNEL, channel
from agentstore.cli.output import (
    CommandError,
    add_sweep_options,
    emit_json,
    plain,
    sensible_age,
    subcommand,
    table,
)
from agentstore.errors import StoreUnavailableError
from agentstore.orchestrator import EventRecord
from agentstore.orchestrator.runs import ENDED
from agentstore.statuses import TaskStatus
from agentstore.store import AgentStore


def run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a run or task id: {text!r}") from None


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r}") from None


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    runs = subcommand(commands, "runs", "orchestrator runs").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = subcommand(runs, "list", "runs, newest first")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor")
    listing.set_defaults(handler=list_runs)
    show = subcommand(runs, "show", "a run's snapshot")
    show.add_argument("run_id", type=run_id)
    show.set_defaults(handler=show_run)
    sweep = subcommand(runs, "sweep", "delete runs that ended, with everything under them")
    sweep.add_argument(
        "--status", action="append", help="repeat for several (default: every ended one)"
    )
    sweep.add_argument("--batch-size", type=int, default=500, help="runs per transaction")
    add_sweep_options(sweep)
    sweep.set_defaults(handler=sweep_runs)

    tasks = subcommand(commands, "tasks", "a run's tasks").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    task_list = subcommand(tasks, "list", "a run's tasks in plan order")
    task_list.add_argument("run_id", type=run_id)
    task_list.add_argument("--status", action="append", help="repeat for several")
    task_list.set_defaults(handler=list_tasks)
    answer = subcommand(tasks, "answer", "answer a waiting task's question")
    answer.add_argument("task_id", type=run_id)
    answer.add_argument("answer", type=json_value, metavar="ANSWER_JSON")
    answer.add_argument(
        "--attempt", type=int, help="the wait being answered (refused if it asks again since)"
    )
    answer.set_defaults(handler=answer_task)

    events = subcommand(commands, "events", "a run's journal").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    tail = subcommand(events, "tail", "a run's latest events; --follow for new ones")
    tail.add_argument("run_id", type=run_id)
    tail.add_argument("--limit", type=int, default=50)
    tail.add_argument("--follow", action="store_true")
    tail.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    tail.set_defaults(handler=tail_events)
    add_prune_parser(events, "events")

    checkpoints = subcommand(commands, "checkpoints", "a run's checkpoints").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add_prune_parser(checkpoints, "checkpoints")


def add_prune_parser(group: argparse._SubParsersAction[Any], journal: str) -> None:
    prune = subcommand(group, "prune", f"delete old {journal}, keeping each run's latest")
    prune.add_argument("--run", dest="run_id", type=run_id, help="one run (default: every run)")
    prune.add_argument("--keep-latest", type=int, metavar="N", help="keep each run's N newest")
    prune.add_argument("--batch-size", type=int, default=1000, help="rows per transaction")
    add_sweep_options(prune, age_required=False)
    prune.set_defaults(handler=prune_journal, journal=journal)


def prune_journal(store: AgentStore, args: argparse.Namespace) -> int:
    if args.keep_latest is None and args.older_than is None:
        raise CommandError("give --keep-latest, --older-than or both: what to keep")
    sensible_age(args)
    if args.keep_latest == 0 and not (args.force or args.dry_run):
        raise CommandError("--keep-latest 0 would delete every row: add --force to mean it")
    journal = store.events if args.journal == "events" else store.checkpoints
    kept = {"keep_latest": args.keep_latest, "older_than": args.older_than}
    if args.dry_run:
        count = journal.prunable(args.run_id, **kept)
        if args.json:
            emit_json({"dry_run": True, args.journal: count})
        else:
            print(f"would delete {count} {args.journal}")
        return 0
    deleted = journal.prune(args.run_id, **kept, batch_size=args.batch_size)
    if args.json:
        emit_json({"dry_run": False, args.journal: deleted})
    else:
        print(f"deleted {deleted} {args.journal}")
    return 0


def sweep_runs(store: AgentStore, args: argparse.Namespace) -> int:
    sensible_age(args)
    statuses = args.status or ENDED
    if args.dry_run:
        count = store.runs.sweepable(args.older_than, statuses=statuses)
        if args.json:
            emit_json({"dry_run": True, "runs": count})
        else:
            print(f"would delete {count} runs that ended more than {args.older_than} ago")
        return 0
    counts = store.runs.sweep(args.older_than, statuses=statuses, batch_size=args.batch_size)
    if args.json:
        emit_json({"dry_run": False, **plain(counts)})
    else:
        rows = ", ".join(f"{n} {table_name}" for table_name, n in plain(counts).items())
        print(f"deleted {rows}")
    return 0


def list_runs(store: AgentStore, args: argparse.Namespace) -> int:
    page = store.runs.list(status=args.status, limit=args.limit, cursor=args.cursor)
    if args.json:
        emit_json(page)
        return 0
    table(
        [(r.id, r.status, r.cycle_count, r.created_at, r.goal) for r in page.items],
        ["id", "status", "cycles", "created", "goal"],
    )
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")
    return 0


def show_run(store: AgentStore, args: argparse.Namespace) -> int:
    snapshot = store.runs.snapshot(args.run_id)
    if args.json:
        emit_json(snapshot)
        return 0
    run = snapshot.run
    print(f"run {run.id}  [{run.status.value}]  {run.goal}")
    print(f"repo {run.repo_path}  cycles {run.cycle_count}  replans {run.replan_count}")
    counts = "  ".join(f"{status.value} {len(tasks)}" for status, tasks in snapshot.tasks.items())
    print(f"tasks: {counts}")
    for status in (
        TaskStatus.IN_PROGRESS,
        TaskStatus.WAITING,
        TaskStatus.PENDING,
        TaskStatus.BLOCKED,
    ):
        for task in snapshot.tasks[status]:
            print(f"  {status.value:<11} #{task.position} {task.title} (attempt {task.attempt})")
            if status is TaskStatus.WAITING:
                print(f"              asks: {json.dumps(task.question, ensure_ascii=False)}")
    if snapshot.agents:
        print("agents:")
        table(
            [(a.role, a.session_id, a.turns, a.rotation_count) for a in snapshot.agents.values()],
            ["role", "session", "turns", "rotations"],
        )
    if snapshot.approvals:
        print("approvals:")
        table(
            [(a.created_at, a.source, a.verdict, a.rationale) for a in snapshot.approvals],
            ["when", "source", "verdict", "rationale"],
        )
    print("latest events:")
    print_events(snapshot.recent_events[-15:])
    return 0


def list_tasks(store: AgentStore, args: argparse.Namespace) -> int:
    store.runs.get(args.run_id)  # a clear "not found" for an unknown run
    tasks = store.tasks.list(args.run_id, args.status)
    if args.json:
        emit_json(tasks)
        return 0
    table(
        [(t.position, t.id, t.status, t.attempt, t.claimed_by, t.title) for t in tasks],
        ["#", "id", "status", "attempt", "worker", "title"],
    )
    return 0


def answer_task(store: AgentStore, args: argparse.Namespace) -> int:
    task = store.tasks.answer(args.task_id, args.answer, attempt=args.attempt)
    if args.json:
        emit_json(task)
    else:
        print(f"task {task.id} answered: {task.status.value}")
    return 0


def print_events(events: list[EventRecord], as_json: bool = False) -> None:
    for event in events:
        if as_json:
            print(json.dumps(plain(event), ensure_ascii=False))
        else:
            print(f"{event.id:>6} {event.ts:%H:%M:%S} {event.source}/{event.kind}: {event.message}")
    sys.stdout.flush()  # a follower's reader (a pipe: block-buffered) sees each at once


def tail_events(store: AgentStore, args: argparse.Namespace) -> int:
    store.runs.get(args.run_id)
    # On PostgreSQL the journal NOTIFYs: wake at once; the interval is then a fallback.
    channels = (channel(EVENTS_CHANNEL, store.schema),)
    listener = store.backend.listener(store.engine.url, channels) if args.follow else None
    try:
        if listener is not None:
            # LISTEN before the first read, so that no event falls in between (failing,
            # the loop below polls, and listens again).
            with contextlib.suppress(StoreUnavailableError):
                listener.wait(0.0)
        events = store.events.list(args.run_id, args.limit)
        print_events(events, args.json)
        if not args.follow:
            return 0
        last = events[-1].id if events else 0
        while True:
            if listener is None:
                time.sleep(args.interval)
            else:
                try:
                    listener.wait(args.interval)
                except StoreUnavailableError:  # lost: poll, and listen again next time
                    time.sleep(args.interval)
            new = store.events.tail(args.run_id, after_id=last)
            print_events(new, args.json)
            if new:
                last = new[-1].id
    except KeyboardInterrupt:
        return 0
    finally:
        if listener is not None:
            listener.close()
