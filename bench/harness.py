"""What every benchmark shares: the databases, timing, and the result table."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import agentstore
from agentstore.backends.sqlite import CONNECTION_PRAGMAS
from tests.support.postgres import postgres_server

DIALECTS = ("sqlite", "postgresql")


@dataclass
class Row:
    """One line of the results: a figure for the library, the raw driver's for the same
    work, and whether the library's figure meets its target."""

    benchmark: str
    case: str
    unit: str
    library: float
    raw: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """Library relative to raw, as a speed: above 1 the library is faster."""
        if self.raw is None or not self.raw or not self.library:
            return None
        return self.library / self.raw if self.higher_is_better else self.raw / self.library


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row


def format_row(row: Row) -> str:
    raw = f"{row.raw:,.1f}" if row.raw is not None else "-"
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    verdict = {True: "met", False: "MISSED", None: ""}[row.met]
    return (
        f"{row.benchmark:<9} {row.case:<44} {row.library:>10,.1f} {raw:>10} {row.unit:<8} "
        f"{ratio:>6}  {row.target} {verdict} {row.notes}".rstrip()
    )


def markdown(rows: list[Row]) -> str:
    lines = [
        "| benchmark | case | library | raw | unit | ratio | target | met | notes |",
        "| --- | --- | ---: | ---: | --- | ---: | --- | --- | --- |",
    ]
    for row in rows:
        raw = f"{row.raw:,.1f}" if row.raw is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        lines.append(
            f"| {row.benchmark} | {row.case} | {row.library:,.1f} | {raw} | {row.unit} | "
            f"{ratio} | {row.target} | {met} | {row.notes} |"
        )
    return "\n".join(lines)


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, by linear interpolation."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latencies_ms(call: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


class Databases:
    """Fresh migrated databases for the benchmarks: SQLite files in a scratch directory,
    PostgreSQL databases on the server ``postgres_url`` (or one started for the run)."""

    def __init__(self, scratch: Path, postgres_admin_url: str | None) -> None:
        self.scratch = scratch
        self.postgres_admin_url = postgres_admin_url
        self._names = itertools.count()
        self._created: list[str] = []

    def fresh(self, dialect: str, name: str) -> str:
        """A migrated, empty database for ``dialect``; its URL."""
        label = f"bench_{os.getpid()}_{name}_{next(self._names)}"
        if dialect == "sqlite":
            url = f"sqlite:///{self.scratch / f'{label}.db'}"
        else:
            url = self.create_postgres(label)
        agentstore.migrate(url)
        return url

    def create_postgres(self, name: str) -> str:
        if self.postgres_admin_url is None:
            raise RuntimeError("no PostgreSQL server for this run")
        admin_url = make_url(self.postgres_admin_url)
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        self._created.append(name)
        return admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_created(self) -> None:
        """Drop the PostgreSQL databases this run created (the server may be shared)."""
        if not self._created or self.postgres_admin_url is None:
            return
        admin = sa.create_engine(self.postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self._created:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextlib.contextmanager
def databases(postgres_url: str | None, dialects: tuple[str, ...]) -> Iterator[Databases]:
    """Scratch space, and a PostgreSQL server when a dialect needs one: ``postgres_url``
    if given, else one found or started the way the tests do."""
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agentstore-bench-")))
        if "postgresql" in dialects and not postgres_url:
            postgres_url = stack.enter_context(postgres_server())
        databases = Databases(scratch, postgres_url if "postgresql" in dialects else None)
        stack.callback(databases.drop_created)
        yield databases


def raw_sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database, url
    return database


def raw_postgres_dsn(url: str) -> str:
    """The libpq connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_text(moment: datetime) -> str:
    """A timestamp as the library stores it on SQLite (naive UTC text), for raw SQL."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def raw_sqlite_connect(url: str) -> sqlite3.Connection:
    """A sqlite3 connection set up as the library sets up its own (its
    ``CONNECTION_PRAGMAS``: WAL, foreign keys, busy timeout, synchronous=NORMAL, the WAL
    checkpoint's size), in autocommit mode so the caller writes its own
    ``BEGIN IMMEDIATE``."""
    connection = sqlite3.connect(raw_sqlite_path(url), isolation_level=None, timeout=30)
    for pragma in CONNECTION_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    return connection


def raw_postgres_connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(raw_postgres_dsn(url))


@dataclass
class Context:
    """What a benchmark's ``run(context)`` gets: where to put its rows, fresh databases,
    the dialects asked for, and the scale (``quick`` shrinks every size for a smoke run;
    ``repeat`` is how many times each measurement is taken, the median reported)."""

    report: Report
    databases: Databases
    dialects: tuple[str, ...]
    quick: bool = False
    repeat: int = 3


BARRIER_TIMEOUT = 120.0  # seconds for every worker process to connect and get ready
DRAIN_TIMEOUT = 600.0  # seconds for a drain
#: What a worker process calls once it is ready: it waits for the others there.
Ready = Callable[[], None]


def drain_in_processes(work: Callable[[Ready], None], workers: int, what: str) -> float:
    """Run ``work(ready)`` in ``workers`` forked processes, released together once each
    has called ``ready``: the seconds from the first release to the last end. Raises
    with a worker's traceback if one failed."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_drain_in_process, args=(work, start, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    # A broken barrier: a worker failed before it was ready; its report says why.
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(BARRIER_TIMEOUT)
    spans = [results.get(timeout=DRAIN_TIMEOUT) for _ in processes]
    for process in processes:
        process.join()
    if failures := [error for _, _, error in spans if error]:
        raise RuntimeError(f"a {what} worker failed:\n{failures[0]}")
    return float(max(end for _, end, _ in spans) - min(begin for begin, _, _ in spans))


def _drain_in_process(work: Callable[[Ready], None], start: Any, results: Any) -> None:
    """One worker: its span, from its release to its end (or why it failed)."""
    began: list[float] = []

    def ready() -> None:
        start.wait(BARRIER_TIMEOUT)
        began.append(time.monotonic())

    try:
        work(ready)
        results.put((began[0], time.monotonic(), None))
    except BaseException:
        start.abort()  # the others (and the benchmark) stop waiting for this one
        results.put((0.0, 0.0, traceback.format_exc()))
