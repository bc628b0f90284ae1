"""A PostgreSQL server for the tests, found or started in this order:

1. ``$AGENTSTORE_TEST_POSTGRES_URL``: a server someone already runs;
2. testcontainers, where a Docker daemon answers;
3. a throwaway cluster from the local PostgreSQL binaries (as the ``postgres`` user
   when running as root, since the server refuses to run as root).

``PostgresUnavailable`` says why none could be had; the fixture turns it into a skip, or
into a failure under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

URL_ENV_VAR = "AGENTSTORE_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server's maintenance database."""
    if url := os.environ.get(URL_ENV_VAR):
        yield url
        return
    reasons = []
    if docker_answers():
        with _testcontainer() as url:
            yield url
            return
    reasons.append("no Docker daemon answers")
    bindir = _local_bindir()
    if bindir is None:
        reasons.append("no PostgreSQL server binaries found (pg_ctl)")
        raise PostgresUnavailable(f"${URL_ENV_VAR} is unset; " + "; ".join(reasons))
    with _local_cluster(bindir) as url:
        yield url


def docker_answers() -> bool:
    try:
        import docker  # testcontainers' dependency

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _testcontainer() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
        yield container.get_connection_url()


def _local_bindir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _local_cluster(bindir: Path) -> Iterator[str]:
    with LocalCluster(bindir, durable=False) as cluster:
        yield cluster.url


class LocalCluster:
    """A throwaway cluster from the local PostgreSQL binaries (run as the ``postgres``
    user when running as root, since the server refuses to run as root). A test server is
    not ``durable`` (fsync off: nothing must survive a crash); a durable one is, for the
    tests that restart or crash it."""

    def __init__(self, bindir: Path, *, durable: bool) -> None:
        self.bindir = bindir
        self.durable = durable
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.workdir = Path(tempfile.mkdtemp(prefix="agentstore-pg-"))
        self.datadir = self.workdir / "data"
        if self.as_postgres:
            shutil.chown(self.workdir, "postgres")
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_postgres, *args], capture_output=True, text=True)
        if result.returncode != 0:
            log = self.workdir / "server.log"
            detail = log.read_text() if log.exists() else ""
            raise PostgresUnavailable(
                f"{args[0]} failed: {result.stderr.strip()}\n{detail[-2000:]}"
            )

    def __enter__(self) -> LocalCluster:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        self.start()
        return self

    def start(self) -> None:
        # Room for the many connections the concurrency tests open; a test server
        # without durability.
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-l",
            str(self.workdir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: a crash (recovery on the next start)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self, mode: str) -> None:
        self.stop(mode)
        self.start()

    def __exit__(self, *exc: object) -> None:
        subprocess.run(
            [
                *self.as_postgres,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)


def durable_cluster() -> LocalCluster:
    """A durable cluster of the local binaries (enter it to start it), for the tests that
    restart and crash the server. Raises ``PostgresUnavailable`` without binaries."""
    bindir = _local_bindir()
    if bindir is None:
        raise PostgresUnavailable("no PostgreSQL server binaries found (pg_ctl)")
    return LocalCluster(bindir, durable=True)


def kill_connections(url: str) -> int:
    """Terminate every client connection to the database of ``url`` (as a restart does)."""
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        killed = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"  # not autovacuum, which may visit
        ).scalar_one()
    admin.dispose()
    return int(killed)
