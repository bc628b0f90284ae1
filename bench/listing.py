"""Listing at scale: 1,000,000 executions across 50 scopes, with tool calls (0 to 4 each,
2 on average) and interactions (1 execution in 20), listed through the library.

Measured: the default page of a scope; three filters combined (status, tool glob, time
range); ``meta`` for the same filters; page 1 against page 1,000 reached by cursor. The
baseline is the reference system's approach on the raw driver: load the scope (with its
tool-call paths and interactions) and filter, sort and slice in Python.

Rows are seeded by one INSERT … SELECT per table, generated in the database. The seeded
SQLite file is kept in ``bench/.cache`` and reused by later runs.
"""

from __future__ import annotations

import itertools
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agentstore import AgentStore, ExecutionQuery
from agentstore.schema import revisions
from bench.harness import (
    Context,
    Row,
    latencies_ms,
    percentile,
    raw_postgres_connect,
    raw_sqlite_connect,
    sqlite_text,
)

SCOPES = 50  # the seed's SQL below spells it out as 50
CACHE = Path(__file__).with_name(".cache")
TOOL_PATHS = [
    "github.issues.list",
    "github.issues.create",
    "github.pulls.get",
    "github.pulls.merge",
    "github.repos.get",
    "slack.post",
    "slack.history",
    "fs.read",
    "fs.write",
    "http.get",
    "db.query",
    "search.web",
]
# Every execution's fields derive from its number g, so both dialects hold the same data.
# g % 50 is its scope; each other field rolls its own number from g (a multiplicative
# hash, a different multiplier per field), so no field is tied to the scope or to another.


def roll(multiplier: int, sides: int) -> str:
    return f"((g * {multiplier}) % 1000003 % {sides})"


STATUS_ROLL = roll(7907, 100)
STATUS_OF_G = f"""CASE WHEN {STATUS_ROLL} < 80 THEN 'completed'
    WHEN {STATUS_ROLL} < 90 THEN 'failed' WHEN {STATUS_ROLL} < 94 THEN 'cancelled'
    WHEN {STATUS_ROLL} < 97 THEN 'running'
    WHEN {STATUS_ROLL} < 99 THEN 'waiting_for_interaction' ELSE 'pending' END"""
TRIGGER_OF_G = (
    f"CASE {roll(6271, 4)} WHEN 0 THEN 'cli' WHEN 1 THEN 'http' WHEN 2 THEN 'schedule' END"
)
AGE_SECONDS_OF_G = "((g * 7919) % 2592000)"  # spread over 30 days
DURATION_OF_G = f"CASE WHEN {STATUS_ROLL} < 94 THEN (g * 31) % 60000 END"  # finished ones
TOOL_CALLS_OF_G = roll(5323, 5)  # 0 to 4
PENDING_ASK_OF_G = f"{STATUS_ROLL} IN (97, 98)"  # the executions waiting for a person
ASKED_OF_G = f"({roll(4201, 20)} = 0 OR {PENDING_ASK_OF_G})"
TOOL_OF_G_K = "1 + (g * 3571 + k * 131) % 1000003 % 12"  # an index into TOOL_PATHS
SEED_VERSION = 3  # part of the cache's file name: change it when the seed changes


# The reference loads whole rows; these are their columns, and where the filters look.
REFERENCE_COLUMNS = (
    "scope_id, id, status, code, result, error_text, logs, trigger_kind, trigger_meta, "
    "tool_call_count, started_at, completed_at, duration_ms, created_at, updated_at"
)
ID, STATUS, CREATED_AT = 1, 2, 13


def postgres_seed(count: int, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    created = f"(:now - make_interval(secs => {AGE_SECONDS_OF_G} + (g % 1000000) / 1e6))"
    paths = "ARRAY[" + ", ".join(f"'{p}'" for p in TOOL_PATHS) + "]"
    return [
        (
            f"""INSERT INTO executions (scope_id, id, status, code, trigger_kind,
                tool_call_count, started_at, completed_at, duration_ms, created_at, updated_at)
            SELECT 'scope-' || (g % {SCOPES}), lpad(to_hex(g), 32, '0')::uuid, {STATUS_OF_G},
                'result = run_tool(' || g || ')', {TRIGGER_OF_G}, {TOOL_CALLS_OF_G}, {created},
                {created} + make_interval(secs => ({DURATION_OF_G}) / 1000.0),
                {DURATION_OF_G}, {created}, {created}
            FROM generate_series(1::bigint, :count) AS g""",
            {"now": now, "count": count},
        ),
        (
            f"""INSERT INTO execution_tool_calls (id, scope_id, execution_id, status,
                tool_path, namespace, started_at, completed_at, duration_ms)
            SELECT (lpad(to_hex(g), 16, '0') || lpad(to_hex(k), 16, '0'))::uuid,
                'scope-' || (g % {SCOPES}), lpad(to_hex(g), 32, '0')::uuid, 'completed',
                ({paths})[{TOOL_OF_G_K}], split_part(({paths})[{TOOL_OF_G_K}], '.', 1),
                {created}, {created}, 40
            FROM generate_series(1::bigint, :count) AS g,
                generate_series(1, ({TOOL_CALLS_OF_G})::int) AS k""",
            {"now": now, "count": count},
        ),
        (
            f"""INSERT INTO execution_interactions (id, scope_id, execution_id, status, kind,
                purpose, created_at, updated_at)
            SELECT (lpad(to_hex(g), 16, '0') || lpad('ff', 16, '0'))::uuid,
                'scope-' || (g % {SCOPES}), lpad(to_hex(g), 32, '0')::uuid,
                CASE WHEN {PENDING_ASK_OF_G} THEN 'pending' ELSE 'resolved' END,
                'approval', 'May I merge?', {created}, {created}
            FROM generate_series(1::bigint, :count) AS g WHERE {ASKED_OF_G}""",
            {"now": now, "count": count},
        ),
    ]


def sqlite_seed(count: int, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    # Timestamps as the library stores them on SQLite: naive UTC text, microseconds.
    created = (
        f"(strftime('%Y-%m-%d %H:%M:%S', :now - {AGE_SECONDS_OF_G}, 'unixepoch') "
        "|| printf('.%06d', g % 1000000))"
    )
    finished = (
        f"(strftime('%Y-%m-%d %H:%M:%S', :now - {AGE_SECONDS_OF_G} "
        f"+ ({DURATION_OF_G}) / 1000, 'unixepoch') || printf('.%06d', g % 1000000))"
    )
    numbers = "WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < :count)"
    path = "(SELECT path FROM tool_paths WHERE tool_paths.i = " + TOOL_OF_G_K + ")"
    path_values = ", ".join(f"({i}, '{p}')" for i, p in enumerate(TOOL_PATHS, start=1))
    params = {"now": int(now.timestamp()), "count": count}
    return [
        (
            f"""INSERT INTO executions (scope_id, id, status, code, trigger_kind,
                tool_call_count, started_at, completed_at, duration_ms, created_at, updated_at)
            {numbers}
            SELECT 'scope-' || (g % {SCOPES}), printf('%032x', g), {STATUS_OF_G},
                'result = run_tool(' || g || ')', {TRIGGER_OF_G}, {TOOL_CALLS_OF_G}, {created},
                CASE WHEN {DURATION_OF_G} IS NOT NULL THEN {finished} END,
                {DURATION_OF_G}, {created}, {created}
            FROM n""",
            params,
        ),
        ("CREATE TEMP TABLE tool_paths (i INTEGER PRIMARY KEY, path TEXT)", {}),
        (f"INSERT INTO tool_paths VALUES {path_values}", {}),
        (
            f"""INSERT INTO execution_tool_calls (id, scope_id, execution_id, status,
                tool_path, namespace, started_at, completed_at, duration_ms)
            {numbers}, k(k) AS (VALUES (1), (2), (3), (4))
            SELECT printf('%016x%016x', g, k), 'scope-' || (g % {SCOPES}), printf('%032x', g),
                'completed', {path}, substr({path}, 1, instr({path}, '.') - 1),
                {created}, {created}, 40
            FROM n JOIN k ON k.k <= {TOOL_CALLS_OF_G}""",
            params,
        ),
        (
            f"""INSERT INTO execution_interactions (id, scope_id, execution_id, status, kind,
                purpose, created_at, updated_at)
            {numbers}
            SELECT printf('%016x%016x', g, 255), 'scope-' || (g % {SCOPES}),
                printf('%032x', g),
                CASE WHEN {PENDING_ASK_OF_G} THEN 'pending' ELSE 'resolved' END,
                'approval', 'May I merge?', {created}, {created}
            FROM n WHERE {ASKED_OF_G}""",
            params,
        ),
        ("DROP TABLE tool_paths", {}),
    ]


def seed(url: str, count: int, now: datetime) -> None:
    statements = sqlite_seed if url.startswith("sqlite") else postgres_seed
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for sql, params in statements(count, now):
            connection.execute(sa.text(sql), params)
    if not url.startswith("sqlite"):
        # What autovacuum does after a bulk load (since PostgreSQL 13 inserts alone
        # trigger it): statistics, and the visibility map that lets index-only scans
        # skip the heap. Done here so that it does not happen halfway through a measure.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def seeded_database(context: Context, dialect: str, count: int) -> tuple[str, datetime]:
    """A database holding ``count`` executions; its URL and the instant they lead up to.
    A seeded SQLite file is cached and copied (not at smoke-test scale, where seeding
    takes a moment); PostgreSQL is seeded each run."""
    if dialect == "sqlite" and not context.quick:
        head = revisions(context.databases.fresh("sqlite", "probe"))[1]
        name = f"listing-{count}-seed{SEED_VERSION}-{'-'.join(sorted(head))}.db"
        cached = CACHE / name
        now_file = cached.with_suffix(".now")
        if not cached.exists():
            CACHE.mkdir(exist_ok=True)
            url = context.databases.fresh("sqlite", "listing")
            now = datetime.now(UTC)
            seed(url, count, now)
            partial = cached.with_suffix(".partial")
            shutil.copyfile(url.removeprefix("sqlite:///"), partial)
            now_file.write_text(now.isoformat())
            partial.rename(cached)  # only a complete seed is ever found
        target = context.databases.scratch / cached.name
        shutil.copyfile(cached, target)
        return f"sqlite:///{target}", datetime.fromisoformat(now_file.read_text())
    url = context.databases.fresh(dialect, "listing")
    now = datetime.now(UTC)
    seed(url, count, now)
    return url, now


def reference_page(
    url: str, scope: str, keep: Callable[[tuple[Any, ...], set[Any], set[Any]], bool]
) -> Callable[[], list[Any]]:
    """The reference's listing: load the scope's executions, tool-call paths and
    interactions on the raw driver, then filter, sort and take a page in Python."""
    sqlite = url.startswith("sqlite")
    p = "?" if sqlite else "%s"
    executions = f"SELECT {REFERENCE_COLUMNS} FROM executions WHERE scope_id = {p}"
    tool_calls = f"SELECT execution_id, tool_path FROM execution_tool_calls WHERE scope_id = {p}"
    interactions = f"SELECT execution_id FROM execution_interactions WHERE scope_id = {p}"
    connection: Any = raw_sqlite_connect(url) if sqlite else raw_postgres_connect(url)

    def page() -> list[Any]:
        rows = connection.execute(executions, (scope,)).fetchall()
        paths: dict[Any, set[str]] = {}
        for execution_id, path in connection.execute(tool_calls, (scope,)).fetchall():
            paths.setdefault(execution_id, set()).add(path)
        asked = {row[0] for row in connection.execute(interactions, (scope,)).fetchall()}
        if not sqlite:
            connection.rollback()
        kept = [row for row in rows if keep(row, paths.get(row[ID], set()), asked)]
        kept.sort(key=lambda row: (row[CREATED_AT], row[ID]), reverse=True)
        return kept[:25]

    return page


def same_work(
    url: str,
    now: datetime,
    everything: Callable[[], list[Any]],
    by_filters: Callable[[], list[Any]],
) -> None:
    """The baseline is only a baseline if it finds what the library finds."""
    with AgentStore.open(url) as store:
        for query, reference in ((ExecutionQuery(), everything), (three_filters(now), by_filters)):
            library_ids = [e.id for e in store.executions.list("scope-3", query).items]
            reference_ids = [uuid.UUID(str(row[ID])) for row in reference()]
            assert library_ids == reference_ids, f"the baseline disagrees on {query}"
            assert library_ids, f"nothing matched {query}: the seed is wrong"


def three_filters(now: datetime) -> ExecutionQuery:
    return ExecutionQuery(
        statuses=["completed", "failed"],
        tools=["github.*"],
        created_from=now - timedelta(days=14),
        created_to=now - timedelta(days=7),
    )


def matches_three_filters(now: datetime, sqlite: bool) -> Callable[..., bool]:
    low, high = now - timedelta(days=14), now - timedelta(days=7)
    if sqlite:  # timestamps come back as the stored text
        low_key: Any = sqlite_text(low)
        high_key: Any = sqlite_text(high)
    else:
        low_key, high_key = low, high

    def keep(row: tuple[Any, ...], paths: set[str], _asked: set[Any]) -> bool:
        return (
            row[STATUS] in ("completed", "failed")
            and low_key <= row[CREATED_AT] <= high_key
            and any(path.startswith("github.") for path in paths)
        )

    return keep


def cursor_to_page(store: AgentStore, scope: str, page: int, limit: int) -> str:
    cursor = None
    for _ in range(page - 1):
        cursor = store.executions.list(
            scope, ExecutionQuery(limit=limit, cursor=cursor)
        ).next_cursor
        assert cursor is not None, f"{scope} has fewer than {page} pages of {limit}"
    assert cursor is not None
    return cursor


def run(context: Context) -> None:
    count = 20_000 if context.quick else 1_000_000
    for dialect in context.dialects:
        started = time.monotonic()
        url, now = seeded_database(context, dialect, count)
        ready = time.monotonic() - started
        print(f"listing   {dialect}: {count:,} executions ready in {ready:.0f} s", flush=True)
        measure(context, dialect, url, now, count)


def measure(context: Context, dialect: str, url: str, now: datetime, count: int) -> None:
    calls = 10 if context.quick else 50
    deep_page = 20 if context.quick else 1_000
    page_size = count // SCOPES // deep_page  # so the deep page is a scope's last
    rotation: Iterator[str] = itertools.cycle(f"scope-{n}" for n in range(SCOPES))
    with AgentStore.open(url) as store:
        default = latencies_ms(lambda: store.executions.list(next(rotation)), calls)
        filtered = latencies_ms(
            lambda: store.executions.list(next(rotation), three_filters(now)), calls
        )
        meta = latencies_ms(
            lambda: store.executions.meta(next(rotation), three_filters(now)), calls
        )
        first_query = ExecutionQuery(limit=page_size)
        first = latencies_ms(lambda: store.executions.list("scope-7", first_query), calls)
        # Page 2 is the control: it pays for a cursor (decoding it, one more condition)
        # without any depth, so page 1,000 against page 2 isolates the cost of depth.
        second_query = ExecutionQuery(
            limit=page_size, cursor=cursor_to_page(store, "scope-7", 2, page_size)
        )
        second = latencies_ms(lambda: store.executions.list("scope-7", second_query), calls)
        cursor = cursor_to_page(store, "scope-7", deep_page, page_size)
        deep_query = ExecutionQuery(limit=page_size, cursor=cursor)
        deep = latencies_ms(lambda: store.executions.list("scope-7", deep_query), calls)
    reference_calls = max(3, calls // 5)
    everything = reference_page(url, "scope-3", lambda *_: True)
    by_filters = reference_page(url, "scope-3", matches_three_filters(now, dialect == "sqlite"))
    same_work(url, now, everything, by_filters)
    reference = {
        "default page": percentile(latencies_ms(everything, reference_calls, warmup=1), 0.5),
        "3 filters": percentile(latencies_ms(by_filters, reference_calls, warmup=1), 0.5),
    }
    postgres = dialect == "postgresql"
    targets = {  # the targets, in ms, at 1,000,000 executions
        "default page": 50.0,
        "3 filters": 50.0 if postgres else None,
        "meta, 3 filters": 250.0 if postgres else 1000.0,
    }
    for name, samples in (
        ("default page", default),
        ("3 filters", filtered),
        ("meta, 3 filters", meta),
    ):
        p50 = percentile(samples, 0.5)
        target = targets[name]
        context.report.add(
            Row(
                "listing",
                f"{dialect}: {name} p50 ({count:,} executions)",
                "ms",
                p50,
                reference.get(name),
                higher_is_better=False,
                target=f"<= {target:.0f} ms" if target else "",
                met=None if context.quick or target is None else p50 <= target,
                notes=f"p95 {percentile(samples, 0.95):.1f} ms"
                + ("; raw: the reference's load-and-filter" if name in reference else ""),
            )
        )
    first_p50, deep_p50 = percentile(first, 0.5), percentile(deep, 0.5)
    for page, samples in ((1, first), (2, second)):
        context.report.add(
            Row(
                "listing",
                f"{dialect}: page {page} by cursor p50 ({page_size} a page)",
                "ms",
                percentile(samples, 0.5),
                higher_is_better=False,
                notes=f"p95 {percentile(samples, 0.95):.1f} ms",
            )
        )
    ratio = deep_p50 / first_p50
    context.report.add(
        Row(
            "listing",
            f"{dialect}: page {deep_page:,} by cursor p50 ({page_size} a page)",
            "ms",
            deep_p50,
            higher_is_better=False,
            target="<= 1.2x page 1" if postgres else "",
            met=None if context.quick or not postgres else ratio <= 1.2,
            notes=f"p95 {percentile(deep, 0.95):.1f} ms; {ratio:.2f}x page 1, "
            f"{deep_p50 / percentile(second, 0.5):.2f}x page 2",
        )
    )
