"""Append throughput: journal events and tool calls written in batches, through the
library and through plain inserts on the raw driver.

Events go in with ``store.events.add_many`` (one statement per batch) against the raw
driver's ``executemany``; tool calls with ``store.executions.record_tool_calls`` (the
execution's count and one INSERT per batch) against the same UPDATE and an
``executemany`` INSERT. One transaction per batch on both sides.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentstore import AgentStore, NewEvent, NewToolCall
from agentstore.types import uuid7
from bench.harness import (
    Context,
    Row,
    median,
    raw_postgres_connect,
    raw_sqlite_connect,
    sqlite_text,
)

BATCH = 100
# SQLite's target is issue 16's; PostgreSQL keeps the one it had before.
RAW_TARGET = {"sqlite": 0.8, "postgresql": 0.7}
EVENT_SQL = "INSERT INTO events (run_id, ts, source, kind, message, payload) VALUES ({})"
COUNT_SQL = (
    "UPDATE executions SET tool_call_count = tool_call_count + {p}, updated_at = {p} "
    "WHERE scope_id = {p} AND id = {p}"
)
TOOL_CALL_SQL = (
    "INSERT INTO execution_tool_calls (id, scope_id, execution_id, status, tool_path, "
    "namespace, args, started_at) VALUES ({})"
)


def payload(n: int) -> dict[str, Any]:
    return {"step": n, "detail": "tool finished", "tags": ["bench", "append"]}


def library_events(url: str, run_id: uuid.UUID, total: int) -> None:
    with AgentStore.open(url) as store:
        for start in range(0, total, BATCH):
            store.events.add_many(
                NewEvent(run_id, "worker", "progress", f"step {n}", payload(n))
                for n in range(start, start + BATCH)
            )


def raw_events(url: str, run_id: uuid.UUID, total: int) -> None:
    def rows(start: int, key: Callable[[uuid.UUID], Any], when: Callable[[], Any]) -> list[Any]:
        return [
            (key(run_id), when(), "worker", "progress", f"step {n}", json.dumps(payload(n)))
            for n in range(start, start + BATCH)
        ]

    if url.startswith("sqlite"):
        connection = raw_sqlite_connect(url)
        for start in range(0, total, BATCH):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                EVENT_SQL.format(", ".join("?" * 6)),
                rows(start, lambda u: u.hex, lambda: sqlite_text(datetime.now(UTC))),
            )
            connection.execute("COMMIT")
        connection.close()
        return
    with raw_postgres_connect(url) as pg:
        for start in range(0, total, BATCH):
            with pg.cursor() as cursor:
                cursor.executemany(
                    EVENT_SQL.format(", ".join(["%s"] * 5) + ", %s::jsonb"),
                    rows(start, lambda u: u, lambda: datetime.now(UTC)),
                )
            pg.commit()


def library_tool_calls(url: str, execution_id: uuid.UUID, total: int) -> None:
    with AgentStore.open(url) as store:
        for start in range(0, total, BATCH):
            store.executions.record_tool_calls(
                "bench",
                execution_id,
                [
                    NewToolCall("github.issues.list", {"page": n})
                    for n in range(start, start + BATCH)
                ],
            )


def raw_tool_calls(url: str, execution_id: uuid.UUID, total: int) -> None:
    def rows(start: int, key: Callable[[uuid.UUID], Any], when: Any) -> list[Any]:
        return [
            (key(uuid7()), "bench", key(execution_id), "running", "github.issues.list",
             "github", json.dumps({"page": n}), when)
            for n in range(start, start + BATCH)
        ]  # fmt: skip

    if url.startswith("sqlite"):
        connection = raw_sqlite_connect(url)
        for start in range(0, total, BATCH):
            now = sqlite_text(datetime.now(UTC))
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(COUNT_SQL.format(p="?"), (BATCH, now, "bench", execution_id.hex))
            connection.executemany(
                TOOL_CALL_SQL.format(", ".join("?" * 8)), rows(start, lambda u: u.hex, now)
            )
            connection.execute("COMMIT")
        connection.close()
        return
    with raw_postgres_connect(url) as pg:
        for start in range(0, total, BATCH):
            now = datetime.now(UTC)
            with pg.cursor() as cursor:
                cursor.execute(COUNT_SQL.format(p="%s"), (BATCH, now, "bench", execution_id))
                cursor.executemany(
                    TOOL_CALL_SQL.format(", ".join(["%s"] * 6) + ", %s::jsonb, %s"),
                    rows(start, lambda u: u, now),
                )
            pg.commit()


def rows_per_second(
    write: Callable[[str, uuid.UUID, int], None], url: str, key: uuid.UUID, total: int
) -> float:
    started = time.perf_counter()
    write(url, key, total)
    return total / (time.perf_counter() - started)


def run(context: Context) -> None:
    total = 1_000 if context.quick else 20_000
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "append")
        with AgentStore.open(url) as store:
            run_id = store.runs.create("benchmark", "/bench").id
            execution_id = store.executions.create("bench", "print('append')").id
        for what, library, raw in (
            ("events", library_events, raw_events),
            ("tool calls", library_tool_calls, raw_tool_calls),
        ):
            key = run_id if what == "events" else execution_id
            figures: dict[str, list[float]] = {"library": [], "raw": []}
            for _ in range(context.repeat):  # alternated, so drift falls on both
                figures["library"].append(rows_per_second(library, url, key, total))
                figures["raw"].append(rows_per_second(raw, url, key, total))
            library_rate, raw_rate = median(figures["library"]), median(figures["raw"])
            context.report.add(
                Row(
                    "append",
                    f"{dialect}: {what}, batches of {BATCH}",
                    "rows/s",
                    library_rate,
                    raw_rate,
                    target=f">= {RAW_TARGET[dialect]:g}x raw",
                    met=None if context.quick else library_rate / raw_rate >= RAW_TARGET[dialect],
                    notes=f"{total:,} rows per measurement",
                )
            )
