"""The recorder's overhead on the recorded code's path: what ``store.executions.recording``
and ``rec.tool`` add to the host's code, on each dialect and each face.

Three latencies, p50 and p95, after a warm-up:

- a tool call: one ``rec.tool(path, args, fn)`` with a trivial ``fn`` (it returns a small
  dict), minus the median of ``fn(args)`` called bare; the calls of the executions below,
  each timed on its own;
- an empty execution: entering and leaving ``store.executions.recording(scope, code)``
  with no tool call in it;
- an execution with 10 tool calls: the whole ``with`` block, minus 10 bare calls.

Empty executions and executions with tool calls alternate. The raw column is the floor:
the raw driver (sqlite3, psycopg) writing the same records in one transaction per
execution, already finished: the execution row alone, or the execution row and its 10
tool calls (one ``executemany``); for a tool call, the difference of the two divided by
10. After the timed executions, every one is checked to be stored complete: ended, with
all its tool calls ended and counted (the recorder promises a complete record once
``recording`` returns).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentstore import AgentStore, AsyncAgentStore
from agentstore.types import uuid7
from bench.harness import (
    Context,
    Row,
    percentile,
    raw_postgres_connect,
    raw_sqlite_connect,
    sqlite_text,
)

TOOL_CALLS = 10  # in an execution with tool calls
TOOL = "github.issues.list"
ARGS = {"repo": "agentstore", "page": 1}
CODE = "issues = github.issues.list(repo='agentstore', page=1)"
TOOL_TARGET_US = 300.0
EXECUTION_TARGET_US = 500.0  # to open and close one


def fn(args: dict[str, Any]) -> dict[str, Any]:
    """The recorded tool: trivial, so that what is timed is the recorder."""
    return {"ok": True, "page": args["page"]}


def bare_us(samples: int) -> float:
    """Median microseconds of ``fn(ARGS)`` called bare."""
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        fn(ARGS)
        timings.append((time.perf_counter() - started) * 1e6)
    return percentile(timings, 0.5)


@dataclass
class Samples:
    """Microseconds: each tool call, each empty execution, each execution with tool
    calls (tool calls counted whole: the bare calls are subtracted when reported)."""

    tool: list[float] = field(default_factory=list)
    empty: list[float] = field(default_factory=list)
    full: list[float] = field(default_factory=list)


def record_sync(url: str, scope: str, warmup: int, executions: int) -> Samples:
    samples = Samples()
    with AgentStore.open(url) as store:
        for n in range(warmup + executions):
            keep = n >= warmup
            started = time.perf_counter()
            with store.executions.recording(scope, CODE):
                pass
            ended = time.perf_counter()
            if keep:
                samples.empty.append((ended - started) * 1e6)
            calls = []
            started = time.perf_counter()
            with store.executions.recording(scope, CODE) as rec:
                for _ in range(TOOL_CALLS):
                    before = time.perf_counter()
                    rec.tool(TOOL, ARGS, fn)
                    calls.append((time.perf_counter() - before) * 1e6)
                rec.result({"issues": TOOL_CALLS})
            ended = time.perf_counter()
            if keep:
                samples.full.append((ended - started) * 1e6)
                samples.tool.extend(calls)
    return samples


async def record_async(url: str, scope: str, warmup: int, executions: int) -> Samples:
    samples = Samples()
    async with AsyncAgentStore.open(url) as store:
        for n in range(warmup + executions):
            keep = n >= warmup
            started = time.perf_counter()
            async with store.executions.recording(scope, CODE):
                pass
            ended = time.perf_counter()
            if keep:
                samples.empty.append((ended - started) * 1e6)
            calls = []
            started = time.perf_counter()
            async with store.executions.recording(scope, CODE) as rec:
                for _ in range(TOOL_CALLS):
                    before = time.perf_counter()
                    await rec.tool(TOOL, ARGS, fn)
                    calls.append((time.perf_counter() - before) * 1e6)
                rec.result({"issues": TOOL_CALLS})
            ended = time.perf_counter()
            if keep:
                samples.full.append((ended - started) * 1e6)
                samples.tool.extend(calls)
    return samples


# -- the raw driver's floor -------------------------------------------------------------

EXECUTION_COLUMNS = (
    "scope_id, id, status, code, result, error_text, logs, trigger_kind, trigger_meta, "
    "tool_call_count, started_at, completed_at, duration_ms, created_at, updated_at"
)
TOOL_CALL_COLUMNS = (
    "id, scope_id, execution_id, status, tool_path, namespace, args, result, error_text, "
    "started_at, completed_at, duration_ms"
)
INSERT_EXECUTION = f"INSERT INTO executions ({EXECUTION_COLUMNS}) VALUES ({{}})"
INSERT_TOOL_CALLS = f"INSERT INTO execution_tool_calls ({TOOL_CALL_COLUMNS}) VALUES ({{}})"
RESULT = json.dumps({"issues": TOOL_CALLS})


def execution_row(
    scope: str, calls: int, key: Callable[[uuid.UUID], Any], when: Any
) -> tuple[Any, ...]:
    return (scope, key(uuid7()), "completed", CODE, RESULT, None, "[]", None, None,
            calls, when, when, 0, when, when)  # fmt: skip


def tool_call_rows(
    scope: str, execution: Any, calls: int, key: Callable[[uuid.UUID], Any], when: Any
) -> list[tuple[Any, ...]]:
    args, result = json.dumps(ARGS), json.dumps(fn(ARGS))
    return [
        (key(uuid7()), scope, execution, "completed", TOOL, "github", args, result, None,
         when, when, 0)
        for _ in range(calls)
    ]  # fmt: skip


def raw_writer(url: str, scope: str) -> Callable[[int], None]:
    """A call writing one finished execution with ``calls`` tool calls in one
    transaction on the raw driver."""
    if url.startswith("sqlite"):
        lite = raw_sqlite_connect(url)
        insert_execution = INSERT_EXECUTION.format(", ".join("?" * 15))
        insert_calls = INSERT_TOOL_CALLS.format(", ".join("?" * 12))

        def write_sqlite(calls: int) -> None:
            now = sqlite_text(datetime.now(UTC))
            row = execution_row(scope, calls, lambda u: u.hex, now)
            lite.execute("BEGIN IMMEDIATE")
            lite.execute(insert_execution, row)
            if calls:
                lite.executemany(
                    insert_calls, tool_call_rows(scope, row[1], calls, lambda u: u.hex, now)
                )
            lite.execute("COMMIT")

        return write_sqlite
    pg = raw_postgres_connect(url)
    json_at = {4, 6, 8}  # result, logs, trigger_meta
    insert_pg = INSERT_EXECUTION.format(
        ", ".join("%s::jsonb" if n in json_at else "%s" for n in range(15))
    )
    insert_pg_calls = INSERT_TOOL_CALLS.format(
        ", ".join("%s::jsonb" if n in (6, 7) else "%s" for n in range(12))
    )

    def write_postgres(calls: int) -> None:
        now = datetime.now(UTC)
        row = execution_row(scope, calls, lambda u: u, now)
        with pg.cursor() as cursor:
            cursor.execute(insert_pg, row)
            if calls:
                cursor.executemany(
                    insert_pg_calls, tool_call_rows(scope, row[1], calls, lambda u: u, now)
                )
        pg.commit()

    return write_postgres


def raw_floor(url: str, warmup: int, executions: int) -> tuple[list[float], list[float]]:
    """Microseconds per transaction on the raw driver: the execution row alone, and
    with its tool calls (alternating, as the library's are)."""
    write = raw_writer(url, "raw")
    empty, full = [], []
    for n in range(warmup + executions):
        for calls, samples in ((0, empty), (TOOL_CALLS, full)):
            started = time.perf_counter()
            write(calls)
            if n >= warmup:
                samples.append((time.perf_counter() - started) * 1e6)
    return empty, full


# -- the check --------------------------------------------------------------------------


def stored(url: str, scope: str) -> tuple[dict[str, int], dict[str, int], int]:
    """The scope's executions by status, its tool calls by status, and the sum of the
    executions' tool-call counts, read on the raw driver."""
    place = "?" if url.startswith("sqlite") else "%s"
    executions = f"SELECT status, count(*) FROM executions WHERE scope_id = {place} GROUP BY status"
    tool_calls = (
        "SELECT status, count(*) FROM execution_tool_calls "
        f"WHERE scope_id = {place} GROUP BY status"
    )
    counted = f"SELECT coalesce(sum(tool_call_count), 0) FROM executions WHERE scope_id = {place}"
    connection: Any = (
        raw_sqlite_connect(url) if url.startswith("sqlite") else raw_postgres_connect(url)
    )
    try:
        return (
            dict(connection.execute(executions, (scope,)).fetchall()),
            dict(connection.execute(tool_calls, (scope,)).fetchall()),
            int(connection.execute(counted, (scope,)).fetchone()[0]),
        )
    finally:
        connection.close()


def complete_note(url: str, scope: str, executions: int) -> str:
    """Whether every recorded execution is stored complete: 2 per round (one empty, one
    with its tool calls), ended, with every tool call ended and counted."""
    by_status, calls_by_status, counted = stored(url, scope)
    calls = executions // 2 * TOOL_CALLS
    if (
        by_status == {"completed": executions}
        and calls_by_status == {"completed": calls}
        and (counted == calls)
    ):
        return f"all {executions} executions stored complete"
    return (
        f"INCOMPLETE: executions {by_status}, tool calls {calls_by_status}, counted {counted}"
        f" (expected {executions} completed executions, {calls} completed tool calls)"
    )


# -- the figures ------------------------------------------------------------------------


def latency_row(
    case: str, samples: list[float], raw: float, target: float | None, judged: bool, notes: str
) -> Row:
    """A p50 in microseconds against the raw floor's, the p95 in the notes."""
    p50 = percentile(samples, 0.5)
    return Row(
        "recorder",
        f"{case}, p50",
        "µs",
        p50,
        raw,
        higher_is_better=False,
        target="" if target is None else f"<= {target:g} µs",
        met=p50 <= target if judged and target is not None else None,
        notes=f"p95 {percentile(samples, 0.95):,.0f} µs; {notes}",
    )


def run(context: Context) -> None:
    executions = 10 if context.quick else 100 * context.repeat
    warmup = 2 if context.quick else 20
    bare = bare_us(1000)
    judged = not context.quick
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "recorder")
        floor_empty, floor_full = raw_floor(url, warmup, executions)
        floor = {"empty": percentile(floor_empty, 0.5), "full": percentile(floor_full, 0.5)}
        floor_call = max(floor["full"] - floor["empty"], 0.0) / TOOL_CALLS
        for face in ("sync", "async"):
            scope = f"bench-{face}"
            if face == "sync":
                samples = record_sync(url, scope, warmup, executions)
            else:
                samples = asyncio.run(record_async(url, scope, warmup, executions))
            check = complete_note(url, scope, 2 * (warmup + executions))
            setting = f"{dialect} {face}"
            for row in (
                latency_row(
                    f"{setting}: a tool call",
                    [t - bare for t in samples.tool],
                    floor_call,
                    TOOL_TARGET_US,
                    judged,
                    f"{len(samples.tool)} calls; raw: one tool call's share of the floor "
                    f"(execution and {TOOL_CALLS} calls, less the execution alone, / {TOOL_CALLS})",
                ),
                latency_row(
                    f"{setting}: open+close an execution",
                    samples.empty,
                    floor["empty"],
                    EXECUTION_TARGET_US,
                    judged,
                    f"raw: the finished execution's row in one transaction "
                    f"(p95 {percentile(floor_empty, 0.95):,.0f} µs)",
                ),
                latency_row(
                    f"{setting}: execution, {TOOL_CALLS} tool calls",
                    [t - TOOL_CALLS * bare for t in samples.full],
                    floor["full"],
                    None,
                    judged,
                    f"raw: the execution and its tool calls in one transaction "
                    f"(p95 {percentile(floor_full, 0.95):,.0f} µs); {check}",
                ),
            ):
                context.report.add(row)
