"""``agentstore worker module:function``: work tasks with a handler, until SIGTERM or
SIGINT (then gracefully: see ``agentstore.worker.Worker``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from datetime import timedelta
from typing import Any

from agentstore.cli.output import CommandError, emit_json, plain, subcommand
from agentstore.cli.runs import run_id
from agentstore.store import AgentStore
from agentstore.worker import Worker

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> timedelta:
    """``500ms``, ``30s``, ``5m``, ``1h`` (a bare number is seconds)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration (like 30s, 5m, 1h): {text!r}")
    return timedelta(seconds=float(match[1]) * UNITS[match[2] or "s"])


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    worker = subcommand(commands, "worker", "work tasks with a handler until SIGTERM")
    worker.add_argument(
        "handler_path", metavar="HANDLER", help="the handler, as package.module:function"
    )
    worker.add_argument("--run", type=run_id, default=None, help="only this run's tasks")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--lease", type=duration, default=timedelta(minutes=5))
    worker.add_argument("--batch", type=int, default=1, help="tasks claimed at once")
    worker.add_argument("--name", default=None)
    worker.add_argument("--grace", type=duration, default=timedelta(seconds=30))
    worker.add_argument("--poll", type=duration, default=timedelta(seconds=1))
    worker.add_argument(
        "--until-idle", action="store_true", help="also stop once nothing is pending or held"
    )
    # A worker started while the database restarts waits for it, as it would later.
    worker.set_defaults(handler=run, waits_for_database=True)


def load(path: str) -> Any:
    """``package.module:function``, imported as ``python -m`` would (from the current
    directory too)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise CommandError(f"the handler must be given as package.module:function, not {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"cannot load the handler {path}: {exc}") from None
    return found


def run(store: AgentStore, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = Worker(
        store,
        load(args.handler_path),
        run_id=args.run,
        concurrency=args.concurrency,
        lease=args.lease,
        batch=args.batch,
        name=args.name,
        grace=args.grace,
        poll_interval=args.poll,
    )
    counters = worker.run(until_idle=args.until_idle)
    if args.json:
        emit_json(plain(counters))
    else:
        print(" ".join(f"{name} {value}" for name, value in vars(counters).items()))
    return 0
