"""The facts a reader needs to weigh the figures: the machine, the versions, and the
PostgreSQL settings that decide write speed."""

from __future__ import annotations

import os
import platform
import sqlite3

import psycopg
import sqlalchemy as sa

POSTGRES_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "fsync",
    "synchronous_commit",
    "max_connections",
)


def facts(postgres_url: str | None) -> list[tuple[str, str]]:
    rows = [
        ("cores", str(os.cpu_count())),
        ("memory", _memory()),
        ("platform", platform.platform()),
        ("python", platform.python_version()),
        ("sqlalchemy", sa.__version__),
        ("psycopg", psycopg.__version__),
        ("sqlite", sqlite3.sqlite_version),
    ]
    if postgres_url:
        engine = sa.create_engine(postgres_url)
        with engine.connect() as connection:
            for name in POSTGRES_SETTINGS:
                value = connection.exec_driver_sql(f"SHOW {name}").scalar_one()
                rows.append((f"postgres {name}", str(value)))
        engine.dispose()
    return rows


def _memory() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return "unknown"
    return f"{kib / 1024 / 1024:.1f} GiB"


def markdown(rows: list[tuple[str, str]]) -> str:
    lines = ["| fact | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)
