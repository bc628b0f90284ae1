"""Retention at a million events: ``runs.sweep`` of the runs that ended, and
``events.prune`` keeping each run's latest events or the young ones, as rows deleted per
second, against the raw driver deleting the same rows in one unbatched statement per
table (the fastest way, holding its locks throughout: what batches cost).

Each measurement starts from a copy of one seeded database: 1,000 runs, a tenth of them
ended, with 1,000 events each (``--quick``: 20 runs of 100 events).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from agentstore import AgentStore
from bench.harness import (
    Context,
    Row,
    median,
    raw_postgres_connect,
    raw_sqlite_connect,
    raw_sqlite_path,
    sqlite_text,
)

KEEP_LATEST = 100
SEED_EVENTS = """
INSERT INTO events (run_id, ts, source, kind, message, payload, transaction_id)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {per_run})
SELECT runs.id, runs.created_at, 'worker', 'progress', 'step', '{{"step": 1}}', 0
FROM runs, n
"""
RAW_SWEEP = (
    "DELETE FROM events WHERE run_id IN (SELECT id FROM runs WHERE status = 'completed')",
    "DELETE FROM runs WHERE status = 'completed'",
)
RAW_KEEP_LATEST = f"""
DELETE FROM events WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY run_id ORDER BY id DESC) AS newest
        FROM events
    ) AS ranked WHERE newest > {KEEP_LATEST}
)
"""
RAW_OLDER_THAN = "DELETE FROM events WHERE ts < {p}"


def seeded(context: Context, dialect: str, runs: int, per_run: int) -> str:
    url = context.databases.fresh(dialect, "retention_seed")
    with AgentStore.open(url) as store:
        for n in range(runs):
            store.runs.create("benchmark", "/bench", "completed" if n % 10 == 0 else "running")
        with store.engine.begin() as connection:
            connection.exec_driver_sql(SEED_EVENTS.format(per_run=per_run))
            connection.exec_driver_sql("ANALYZE")
    return url


def copy_of(context: Context, dialect: str, seed: str) -> str:
    """A fresh copy of the seeded database: a file copy, or a database from it as a
    template."""
    if dialect == "sqlite":
        url = context.databases.fresh(dialect, "retention")
        shutil.copyfile(raw_sqlite_path(seed), raw_sqlite_path(url))
        return url
    template = sa.make_url(seed).database
    url = context.databases.create_postgres(f"retention_{time.monotonic_ns()}")
    name = sa.make_url(url).database
    admin = sa.create_engine(
        context.databases.postgres_admin_url or "", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {template}")
    admin.dispose()
    return url


def raw_delete(url: str, statements: tuple[str, ...], parameters: tuple[object, ...] = ()) -> int:
    """The statements in one transaction on the raw driver; the rows they deleted."""
    deleted = 0
    if url.startswith("sqlite"):
        connection = raw_sqlite_connect(url)
        connection.execute("BEGIN IMMEDIATE")
        for statement in statements:
            deleted += connection.execute(statement.format(p="?"), parameters).rowcount
        connection.execute("COMMIT")
        connection.close()
        return deleted
    with raw_postgres_connect(url) as pg, pg.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.format(p="%s"), parameters)  # type: ignore[arg-type]
            deleted += cursor.rowcount
    return deleted


def timed(delete: Callable[[str], int], url: str) -> tuple[float, int]:
    started = time.perf_counter()
    deleted = delete(url)
    return time.perf_counter() - started, deleted


def oldest_half(url: str) -> datetime:
    """The time before which the oldest half of the runs were created."""
    with AgentStore.open(url) as store:
        runs = store.runs.list(limit=1000).items
    return runs[len(runs) // 2].created_at


def run(context: Context) -> None:
    for dialect in context.dialects:
        measure(context, dialect)


def measure(context: Context, dialect: str) -> None:
    runs, per_run = (20, 100) if context.quick else (1000, 1000)
    seed = seeded(context, dialect, runs, per_run)
    cutoff = oldest_half(seed)
    raw_cutoff = sqlite_text(cutoff) if dialect == "sqlite" else cutoff

    def sweep(url: str) -> int:
        with AgentStore.open(url) as store:
            counts = store.runs.sweep(timedelta(0))
        return counts.runs + counts.events

    def keep_latest(url: str) -> int:
        with AgentStore.open(url) as store:
            return store.events.prune(keep_latest=KEEP_LATEST)

    def older_than(url: str) -> int:
        with AgentStore.open(url) as store:
            return store.events.prune(older_than=cutoff)

    cases: list[tuple[str, Callable[[str], int], Callable[[str], int]]] = [
        ("runs.sweep, the tenth that ended", sweep, lambda u: raw_delete(u, RAW_SWEEP)),
        (
            f"events.prune(keep_latest={KEEP_LATEST})",
            keep_latest,
            lambda u: raw_delete(u, (RAW_KEEP_LATEST,)),
        ),
        (
            "events.prune(older_than=): the older half",
            older_than,
            lambda u: raw_delete(u, (RAW_OLDER_THAN,), (raw_cutoff,)),
        ),
    ]
    for case, library, raw in cases:
        rates: dict[str, list[float]] = {"library": [], "raw": []}
        counts: set[int] = set()
        for _ in range(context.repeat):  # alternated, so drift falls on both
            for side, delete in (("library", library), ("raw", raw)):
                seconds, deleted = timed(delete, copy_of(context, dialect, seed))
                rates[side].append(deleted / seconds)
                counts.add(deleted)
        assert len(counts) == 1, f"{case}: the two sides deleted {counts} rows"
        context.report.add(
            Row(
                "retention",
                f"{dialect}: {case}",
                "rows/s",
                median(rates["library"]),
                median(rates["raw"]),
                notes=f"{counts.pop():,} rows of {runs * (per_run + 1):,}; "
                "raw: one unbatched DELETE per table",
            )
        )
