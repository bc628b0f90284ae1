"""``agentstore executions``: the execution history of a scope."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from agentstore.cli.chart import bar_chart
from agentstore.cli.output import add_sweep_options, age, emit_json, sensible_age, subcommand, table
from agentstore.executions import ExecutionQuery
from agentstore.store import AgentStore


def moment(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ordering(text: str) -> tuple[str, str]:
    """``created_at``, ``duration``, with an optional ``:asc`` or ``:desc``."""
    field, _, direction = text.partition(":")
    field = {"duration": "duration_ms", "created": "created_at"}.get(field, field)
    if field not in ("created_at", "duration_ms") or direction not in ("", "asc", "desc"):
        raise argparse.ArgumentTypeError(
            f"sort by created_at or duration[:asc|:desc], not {text!r}"
        )
    return field, direction or "desc"


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    executions = subcommand(commands, "executions", "execution history").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = subcommand(executions, "list", "a page of a scope's executions")
    add_filters(listing)
    listing.add_argument("--sort", type=ordering, default=("created_at", "desc"))
    listing.add_argument("--limit", type=int, default=25)
    listing.add_argument("--cursor")
    listing.set_defaults(handler=list_executions)

    show = subcommand(executions, "show", "an execution, its tool calls and interactions")
    show.add_argument("execution_id", type=uuid.UUID)
    show.add_argument("--scope", required=True)
    show.set_defaults(handler=show_execution)

    stats = subcommand(executions, "stats", "facets and a chart of a scope's executions")
    add_filters(stats)
    stats.set_defaults(handler=execution_stats)

    waiting = subcommand(executions, "waiting", "the questions waiting for a person, oldest first")
    waiting.add_argument("--scope", help="one scope (default: every scope)")
    waiting.add_argument("--limit", type=int, default=50)
    waiting.add_argument("--cursor")
    waiting.set_defaults(handler=waiting_questions)

    sweep = subcommand(executions, "sweep", "delete old executions with their children")
    sweep.add_argument("--scope")
    add_sweep_options(sweep)
    sweep.set_defaults(handler=sweep_executions)


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", required=True)
    parser.add_argument("--status", action="append", default=[], help="repeat for several")
    parser.add_argument("--trigger", action="append", default=[], help="'unknown': none")
    parser.add_argument("--tool", action="append", default=[], help="a path, or 'prefix.*'")
    parser.add_argument("--since", type=age, metavar="AGE", help="created within AGE")
    parser.add_argument("--from", dest="created_from", type=moment, metavar="TIME")
    parser.add_argument("--to", dest="created_to", type=moment, metavar="TIME")
    parser.add_argument("--code", help="code contains (case-insensitive)")
    parser.add_argument("--had-interaction", action="store_true", default=None)


def query_of(args: argparse.Namespace, **paging: object) -> ExecutionQuery:
    created_from = args.created_from
    if args.since is not None:
        created_from = datetime.now(UTC) - args.since
    return ExecutionQuery(
        statuses=args.status,
        triggers=args.trigger,
        tools=args.tool,
        created_from=created_from,
        created_to=args.created_to,
        code_contains=args.code,
        had_interaction=args.had_interaction,
        **paging,  # type: ignore[arg-type]
    )


def list_executions(store: AgentStore, args: argparse.Namespace) -> int:
    sort, direction = args.sort
    query = query_of(args, sort=sort, direction=direction, limit=args.limit, cursor=args.cursor)
    page = store.executions.list(args.scope, query)
    if args.json:
        emit_json(page)
        return 0
    table(
        [
            (e.id, e.status, e.trigger_kind, e.tool_call_count, e.duration_ms, e.created_at, e.code)
            for e in page.items
        ],
        ["id", "status", "trigger", "tools", "ms", "created", "code"],
    )
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")
    return 0


def show_execution(store: AgentStore, args: argparse.Namespace) -> int:
    view = store.executions.get(args.scope, args.execution_id)
    calls = store.executions.list_tool_calls(args.scope, args.execution_id)
    interactions = store.executions.list_interactions(args.scope, args.execution_id)
    if args.json:
        emit_json({"execution": view.execution, "tool_calls": calls, "interactions": interactions})
        return 0
    e = view.execution
    print(f"execution {e.id}  [{e.status.value}]  scope {e.scope_id}  trigger {e.trigger_kind}")
    print(f"started {e.started_at:%Y-%m-%d %H:%M:%S}  duration {e.duration_ms} ms")
    print(f"code: {e.code}")
    if e.error_text:
        print(f"error: {e.error_text}")
    print("tool calls:")
    table(
        [(c.started_at, c.tool_path, c.status, c.duration_ms, c.error_text) for c in calls],
        ["started", "tool", "status", "ms", "error"],
    )
    print("interactions:")
    table(
        [(i.created_at, i.kind, i.status, i.purpose, i.response) for i in interactions],
        ["asked", "kind", "status", "purpose", "response"],
    )
    return 0


def execution_stats(store: AgentStore, args: argparse.Namespace) -> int:
    meta = store.executions.meta(args.scope, query_of(args))
    if args.json:
        emit_json(meta)
        return 0
    print(f"{meta.filtered} of {meta.total} executions in scope {args.scope}")
    print("status:   " + "  ".join(f"{k} {v}" for k, v in meta.statuses.items()))
    print("trigger:  " + "  ".join(f"{k or 'unknown'} {v}" for k, v in meta.triggers.items()))
    print(f"interaction: with {meta.with_interaction}  without {meta.without_interaction}")
    if meta.top_tools:
        print("top tools: " + "  ".join(f"{path} {count}" for path, count in meta.top_tools[:8]))
    print(bar_chart(meta.chart, meta.bucket_seconds))
    return 0


def waiting_questions(store: AgentStore, args: argparse.Namespace) -> int:
    page = store.executions.inbox(args.scope, limit=args.limit, after=args.cursor)
    if args.json:
        emit_json(page)
        return 0
    table(
        [
            (
                i.created_at,
                i.scope_id,
                i.execution_id,
                i.kind,
                i.purpose,
                i.expires_at,
                i.on_expiry if i.expires_at else None,
                item.execution.code,
            )
            for item in page.items
            for i in (item.interaction,)
        ],
        ["asked", "scope", "execution", "kind", "purpose", "deadline", "then", "code"],
    )
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")
    return 0


def sweep_executions(store: AgentStore, args: argparse.Namespace) -> int:
    sensible_age(args)
    if args.dry_run:
        count = store.executions.sweepable(args.older_than, scope_id=args.scope)
        verb = "would delete"
    else:
        count = store.executions.sweep(args.older_than, scope_id=args.scope)
        verb = "deleted"
    if args.json:
        emit_json({"dry_run": args.dry_run, "executions": count})
    else:
        print(f"{verb} {count} executions older than {args.older_than}")
    return 0
