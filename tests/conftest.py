"""The test harness: every database test runs on SQLite (a real file) and on a real
PostgreSQL, through the ``db_url`` fixture.

PostgreSQL comes from ``$AGENTSTORE_TEST_POSTGRES_URL``, else testcontainers (where a Docker
daemon answers), else a throwaway server from the local binaries. Under ``CI=true`` a
missing PostgreSQL fails the run; elsewhere its tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from agentstore.store import AgentStore
from tests.support.databases import PostgresDatabases, SQLiteDatabases
from tests.support.postgres import PostgresUnavailable, postgres_server

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(postgres_server())
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs a PostgreSQL server and none could be had: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    with stack:
        yield url


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SQLiteDatabases:
    return SQLiteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgresql_databases(postgres_admin_url: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.drop_all()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def databases(request: pytest.FixtureRequest, dialect: str) -> Any:
    """The database factory of the test's dialect."""
    return request.getfixturevalue(f"{dialect}_databases")


@pytest.fixture
def db_url(databases: Any) -> Iterator[str]:
    """A fresh database at head, built from the migrations."""
    url = databases.migrated()
    yield url
    if isinstance(databases, PostgresDatabases):
        databases.drop(url)


@pytest.fixture
def empty_db_url(databases: Any) -> Iterator[str]:
    """A fresh database with no schema at all."""
    url = databases.empty()
    yield url
    if isinstance(databases, PostgresDatabases):
        databases.drop(url)


@pytest.fixture
def store(db_url: str) -> Iterator[AgentStore]:
    """An ``AgentStore`` on a fresh migrated database of the test's dialect."""
    with AgentStore.open(db_url) as opened:
        yield opened


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many tests passed, failed or were skipped on each dialect."""
    counts: dict[str, dict[str, int]] = {name: {} for name in DIALECTS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            for name in DIALECTS:
                if f"[{name}" in report.nodeid or f"-{name}]" in report.nodeid:
                    counts[name][outcome] = counts[name].get(outcome, 0) + 1
    line = "; ".join(
        f"{name}: " + (", ".join(f"{n} {o}" for o, n in sorted(c.items())) or "none")
        for name, c in counts.items()
    )
    terminalreporter.write_line(f"tests per dialect: {line}")
