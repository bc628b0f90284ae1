"""``agentstore serve`` as a person runs it: a real process on a free port, whose journal
stream delivers an event committed after the client connected (on PostgreSQL woken by
the journal's NOTIFY, on SQLite by polling), and which refuses to listen off loopback
without a token."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from agentstore import AgentStore

REPO = Path(__file__).resolve().parents[2]
ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("AGENTSTORE_DATABASE_URL", "AGENTSTORE_SCHEMA", "AGENTSTORE_SERVE_TOKEN")
}
#: Longer than any wait for a notification; shorter than the stream's own fallback
#: read (15 s): on PostgreSQL, an event seen in time was seen because of its NOTIFY.
READ_TIMEOUT = 10.0


def agentstore(*args: str) -> list[str]:
    return [sys.executable, "-m", "agentstore", *args]


@pytest.fixture
def server(db_url: str) -> Iterator[str]:
    """``agentstore serve`` on a free port; its base URL, from what it printed."""
    process = subprocess.Popen(
        agentstore("serve", "--url", db_url, "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, (line, process.stderr.read() if process.poll() is not None else "")
        yield found.group(0)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def listening_sessions(db_url: str) -> int:
    """PostgreSQL sessions that LISTEN on the database (the stream's listener)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_the_journal_stream_delivers_an_event_committed_after_it_connected(
    server: str, db_url: str, dialect: str
) -> None:
    with AgentStore.open(db_url) as store:
        run = store.runs.create("followed", "/repo")
        before = store.events.add(run.id, "worker", "note", "before")
        timeout = httpx.Timeout(READ_TIMEOUT, connect=READ_TIMEOUT)
        url = f"{server}api/runs/{run.id}/events/stream"
        with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            seen: list[dict[str, object]] = []
            ids: list[str] = []
            while not seen or seen[-1]["id"] != before.id:
                line = next(lines)
                if line.startswith("id: "):
                    ids.append(line[4:])
                elif line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
            after = store.events.add(run.id, "worker", "note", "after it connected")
            while seen[-1]["id"] != after.id:
                line = next(lines)  # httpx.ReadTimeout if it never comes
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
            assert seen[-1]["message"] == "after it connected"
            assert [e["kind"] for e in seen] == ["run_created", "note", "note"]
            assert ids == [str(before.id - 1), str(before.id)]
            if dialect == "postgresql":
                assert listening_sessions(db_url) == 1
        if dialect == "postgresql":  # the client left: the stream ended, its listener too
            for _ in range(200):  # the server notices the client left at once; allow 10 s
                if listening_sessions(db_url) == 0:
                    break
                time.sleep(0.05)
            assert httpx.get(f"{server}api/scopes", timeout=READ_TIMEOUT).is_success
            assert listening_sessions(db_url) == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_listening_off_loopback_without_a_token_is_refused(tmp_path: Path, host: str) -> None:
    url = f"sqlite:///{tmp_path / 'never-opened.db'}"  # refused before any database is read
    refused = subprocess.run(
        agentstore("serve", "--url", url, "--host", host, "--port", "0"),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert f"refusing to listen on {host} without a token" in line
    assert "--token" in line and "AGENTSTORE_SERVE_TOKEN" in line
    assert not (tmp_path / "never-opened.db").exists()


def test_without_the_web_extra_it_says_what_to_install(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['uvicorn'] = None; from agentstore.cli import main; "
    url = f"sqlite:///{tmp_path / 'never-opened.db'}"
    refused = subprocess.run(
        [sys.executable, "-c", hide + f"sys.exit(main(['serve', '--url', {url!r}]))"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        timeout=60,
    )
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert "pip install 'agentstore[web]'" in line and "uvicorn" in line
