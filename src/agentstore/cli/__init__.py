"""The ``agentstore`` command: database operations, inspection, and the demo."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

import sqlalchemy as sa

from agentstore.backends import backend_for, resolve_schema, resolve_url
from agentstore.cli import db, demo, executions, runs, serve, worker
from agentstore.cli.output import JSON_HELP, SCHEMA_HELP, URL_HELP, CommandError, error
from agentstore.errors import AgentStoreError, StoreUnavailableError
from agentstore.schema import revisions
from agentstore.store import AgentStore


class OneLineParser(argparse.ArgumentParser):
    """Reports a usage mistake in one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        error(f"{self.prog}: {message} (see {self.prog} --help)")
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    main = OneLineParser(
        prog="agentstore",
        description="Storage for AI-agent systems: runs, tasks and execution history.",
    )
    main.add_argument("--url", default=None, help=URL_HELP)
    main.add_argument("--schema", default=None, help=SCHEMA_HELP)
    main.add_argument("--json", action="store_true", default=False, help=JSON_HELP)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db.add_parser(commands)
    runs.add_parsers(commands)
    executions.add_parsers(commands)
    demo.add_parser(commands)
    worker.add_parser(commands)
    serve.add_parser(commands)
    return main


def require_schema(url: str, schema: str | None, *, wait: bool = False) -> None:
    """Refuse to work on a database that is not at head, naming the fix. With ``wait``,
    a database that cannot be reached for now (restarting, not up yet) is waited for."""
    tries = 0
    while True:
        try:
            current, heads = revisions(url, schema=schema)
            break
        except StoreUnavailableError as exc:
            if not (wait and exc.retryable):
                raise
            tries += 1
            error(f"database not reachable ({exc}); trying again")
            time.sleep(min(5.0, 0.1 * 2**tries))
    if current != heads:
        state = "not migrated" if not current else "not at the newest schema"
        in_schema = "" if schema is None else f" --schema {schema}"
        raise CommandError(
            f"the database is {state}: run agentstore db upgrade --url {url}{in_schema}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        url = resolve_url(args.url)
        args.url = url.render_as_string(hide_password=False)
        args.schema = resolve_schema(backend_for(url), args.schema)
        if args.command == "db":
            return int(args.handler(args))
        precheck = getattr(args, "precheck", None)
        if precheck is not None:  # what a command refuses before it reads the database
            precheck(args)
        if getattr(args, "needs_schema", True):
            wait = getattr(args, "waits_for_database", False)
            require_schema(args.url, args.schema, wait=wait)
        with AgentStore.open(args.url, schema=args.schema) as store:
            return int(args.handler(store, args))
    except (CommandError, AgentStoreError) as exc:
        error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    except sa.exc.SQLAlchemyError as exc:
        error(f"database error: {str(exc).strip().splitlines()[0]}")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader left (`… --json | head`): stop quietly
        _discard_stdout()
        return 1
    return 1


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit finds no broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
