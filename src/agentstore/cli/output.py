"""How the command prints: readable tables by default, JSON with ``--json``, and one
line on stderr for an error."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from agentstore.records import plain as plain  # the commands print records with it

# Options every command takes, before or after its name (``agentstore --json runs list``
# and ``agentstore runs list --json`` are the same). SUPPRESS keeps a subcommand from
# resetting what was given before its name.
URL_HELP = "database URL (default: $AGENTSTORE_DATABASE_URL, else sqlite:///agentstore.db)"
SCHEMA_HELP = "PostgreSQL schema of the store's tables (default: $AGENTSTORE_SCHEMA, else none)"
JSON_HELP = "print JSON, not tables"
COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--url", default=argparse.SUPPRESS, help=URL_HELP)
COMMON.add_argument("--schema", default=argparse.SUPPRESS, help=SCHEMA_HELP)
COMMON.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)


AGES = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: A sweep or prune of anything younger is refused without --force: it would delete
#: what is still being written (``--older-than 0s`` deletes everything).
YOUNGEST_SWEPT = timedelta(minutes=1)


def age(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``30d``, ``2w``."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not an age like 30s, 15m, 1h, 30d: {text!r}")
    return timedelta(**{AGES[match.group(2)]: int(match.group(1))})


def add_sweep_options(parser: argparse.ArgumentParser, *, age_required: bool = True) -> None:
    """``--older-than``, ``--dry-run`` and ``--force``: what every deleting command takes."""
    parser.add_argument("--older-than", type=age, required=age_required, metavar="AGE")
    parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    parser.add_argument(
        "--force", action="store_true", help="allow an age under one minute (0s: everything)"
    )


def sensible_age(args: argparse.Namespace) -> None:
    """Refuse to delete by an age under a minute unless ``--force`` says it is meant (a
    dry run deletes nothing: it may count anything)."""
    if (
        args.older_than is not None
        and args.older_than < YOUNGEST_SWEPT
        and not (args.force or args.dry_run)
    ):
        raise CommandError(
            f"--older-than {args.older_than} would delete what is still being written: "
            "give at least 1m, or add --force to mean it"
        )


def subcommand(group: argparse._SubParsersAction[Any], name: str, help: str) -> Any:
    """Add the subcommand ``name`` to ``group``, taking the common options."""
    return group.add_parser(name, parents=[COMMON], help=help)


class CommandError(Exception):
    """A one-line failure the command reports (exit status 1)."""


def emit_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 48 else text[:47] + "…"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print ``rows`` under ``headers`` in aligned columns."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")


def error(message: str) -> None:
    print(f"agentstore: error: {message}", file=sys.stderr)
