"""The recorder's durability rule, with real processes killed mid-execution (SIGKILL:
no exit code runs): what a block recorded before its last flush is in the database, and
the background flush saves a running block's tool calls while it runs. Both faces, on a
SQLite file and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentstore import AgentStore, ExecutionStatus
from tests.support.waiting import wait_until

pytestmark = pytest.mark.parametrize("dialect", ["sqlite", "postgresql"], indirect=True)
REPO = Path(__file__).resolve().parents[2]


class Host:
    """The recording child process, read line by line."""

    def __init__(self, db_url: str, face: str, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.recording_child", db_url, face, mode],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.execution_id = uuid.UUID(self.expect("execution").split()[1])

    def expect(self, word: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith(word), f"the host said {line!r}, not {word!r}"
        return line

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def host(request: pytest.FixtureRequest, db_url: str, face: str) -> Iterator[Any]:
    def start(mode: str) -> Host:
        started = Host(db_url, face, mode)
        request.addfinalizer(lambda: started.process.poll() is None and started.kill())
        return started

    yield start


def calls_of(store: AgentStore, execution_id: uuid.UUID) -> dict[str, str]:
    return {c.tool_path: c.status for c in store.executions.list_tool_calls("s", execution_id)}


def test_a_host_killed_after_a_flush_keeps_what_the_flush_saved(
    host: Any, sync_store: AgentStore
) -> None:
    recording = host("flush")
    recording.expect("recorded")
    recording.expect("more")
    recording.kill()

    execution = sync_store.executions.get("s", recording.execution_id).execution
    assert execution.status is ExecutionStatus.RUNNING  # cut short: nobody ended it
    calls = calls_of(sync_store, recording.execution_id)
    saved = {f"before.{n}": "completed" for n in range(3)}
    assert {path: calls[path] for path in saved} == saved  # nothing before the flush lost
    # After the flush (and an hour's flush_after): lost, as the rule allows.
    assert set(calls) == set(saved)
    assert execution.tool_call_count == 3


def test_a_running_block_is_saved_in_the_background_and_survives_its_host(
    host: Any, sync_store: AgentStore
) -> None:
    recording = host("background")
    recording.expect("recorded")
    expected = {f"before.{n}": "completed" for n in range(3)}
    wait_until(
        lambda: calls_of(sync_store, recording.execution_id) == expected,
        what="the background save of the running block's tool calls",
    )
    recording.kill()
    execution = sync_store.executions.get("s", recording.execution_id).execution
    assert (execution.status, execution.tool_call_count) == (ExecutionStatus.RUNNING, 3)
    assert calls_of(sync_store, recording.execution_id) == expected
