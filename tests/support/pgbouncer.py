"""PgBouncer in transaction pooling mode, in front of the test PostgreSQL server: each
transaction of a client may run on another server session, so nothing agentstore does may
rely on session state (prepared statements, session settings, session locks, LISTEN).

The harness starts Debian's ``pgbouncer`` binary (switching to the ``postgres`` user
when running as root: PgBouncer refuses to run as root) on a free port, passing every database name
through to the server. ``PgBouncerUnavailable`` says why it could not; the fixture turns
it into a skip, or into a failure under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.postgres import free_port

#: How long a client may sit idle inside a transaction before PgBouncer disconnects it
#: (the pooler's counterpart of ``idle_in_transaction_session_timeout``).
IDLE_TRANSACTION_TIMEOUT_SECONDS = 60


class PgBouncerUnavailable(RuntimeError):
    pass


def _binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(path).exists()),
        None,
    )


@contextlib.contextmanager
def pgbouncer_server(postgres_url: str) -> Iterator[str]:
    """Yield the URL of ``postgres_url``'s server through PgBouncer (same user and
    database; swap the database name to reach another)."""
    binary = _binary()
    if binary is None:
        raise PgBouncerUnavailable("no pgbouncer binary (Debian package: pgbouncer)")
    server = make_url(postgres_url)
    as_postgres = ["--user", "postgres"] if os.geteuid() == 0 else []  # switched at startup
    workdir = Path(tempfile.mkdtemp(prefix="agentstore-pgbouncer-"))
    port = free_port()
    user = server.username or "postgres"
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "users.txt"}
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
max_db_connections = 150
server_login_retry = 1
idle_transaction_timeout = {IDLE_TRANSACTION_TIMEOUT_SECONDS}
logfile = {workdir / "pgbouncer.log"}
"""
    )
    if as_postgres:
        shutil.chown(workdir, "postgres")
        for path in workdir.iterdir():
            shutil.chown(path, "postgres")
    # It logs to its logfile; a pipe no one reads would block it once full.
    process = subprocess.Popen(
        [binary, "--quiet", *as_postgres, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, process, workdir)
        yield server.set(port=port, host="127.0.0.1").render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = workdir / "pgbouncer.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise PgBouncerUnavailable(f"pgbouncer exited: {detail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise PgBouncerUnavailable("pgbouncer did not listen within 30 s")
