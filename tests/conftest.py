"""The test harness: every database test runs on SQLite (a real file) and on a real
PostgreSQL, through the ``db_url`` fixture; every repository test runs on both faces too
(``AgentStore`` and ``AsyncAgentStore``), through the ``store`` fixture. The orchestrator,
executions and worker suites also run on PostgreSQL through PgBouncer in transaction
pooling mode (the ``pgbouncer`` dialect: ``WITH_POOLER`` in their conftest).

PostgreSQL comes from ``$AGENTSTORE_TEST_POSTGRES_URL``, else testcontainers (where a Docker
daemon answers), else a throwaway server from the local binaries; PgBouncer from the local
``pgbouncer`` binary. Under ``CI=true`` a missing server or pooler fails the run; elsewhere
its tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from agentstore.store import AgentStore
from tests.support.databases import (
    DIALECTS,
    WITH_POOLER,
    PooledDatabases,
    PostgresDatabases,
    SQLiteDatabases,
)
from tests.support.faces import BlockingStore
from tests.support.pgbouncer import PgBouncerUnavailable, pgbouncer_server
from tests.support.postgres import PostgresUnavailable, postgres_server

FACES = ["sync", "async"]


def _unavailable(what: str, reason: Exception) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs {what} and none could be had: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(postgres_server())
    except PostgresUnavailable as exc:
        _unavailable("a PostgreSQL server", exc)
    with stack:
        yield url


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_admin_url: str) -> Iterator[str]:
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(pgbouncer_server(postgres_admin_url))
    except PgBouncerUnavailable as exc:
        _unavailable("PgBouncer", exc)
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


@pytest.fixture(scope="session")
def pgbouncer_databases(
    postgresql_databases: PostgresDatabases, pgbouncer_url: str
) -> PooledDatabases:
    return PooledDatabases(postgresql_databases, pgbouncer_url)


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
    databases.drop(url)


@pytest.fixture
def empty_db_url(databases: Any) -> Iterator[str]:
    """A fresh database with no schema at all."""
    url = databases.empty()
    yield url
    databases.drop(url)


@pytest.fixture(params=FACES)
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(db_url: str, face: str) -> Iterator[AgentStore]:
    """The store on a fresh migrated database of the test's dialect, in the test's face:
    ``AgentStore``, or ``AsyncAgentStore`` awaited call by call (``BlockingStore``)."""
    opened = AgentStore.open(db_url) if face == "sync" else BlockingStore(db_url)
    with opened:
        yield opened  # type: ignore[misc]  # BlockingStore stands in for AgentStore


@pytest.fixture
def sync_store(db_url: str) -> Iterator[AgentStore]:
    """An ``AgentStore`` (for tests of threads and processes, which the sync face serves)."""
    with AgentStore.open(db_url) as opened:
        yield opened


def _labels(nodeid: str) -> set[str]:
    parameters = nodeid.rpartition("[")[2].rstrip("]")
    return set(parameters.split("-")) if "[" in nodeid else set()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many tests passed, failed or were skipped on each dialect and face."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            labels = _labels(report.nodeid)
            for dialect in WITH_POOLER:
                if dialect not in labels:
                    continue
                faces = [face for face in FACES if face in labels] or ["-"]
                key = f"{dialect}/{faces[0]}"
                counts.setdefault(key, {})
                counts[key][outcome] = counts[key].get(outcome, 0) + 1
    line = "; ".join(
        f"{key}: " + ", ".join(f"{n} {o}" for o, n in sorted(c.items()))
        for key, c in sorted(counts.items())
    )
    terminalreporter.write_line(f"tests per dialect/face ('-': no face): {line or 'none'}")
