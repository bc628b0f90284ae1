"""The demo, the main job: on SQLite and on PostgreSQL, twice."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow


def test_the_demo_completes_every_task_once_and_shows_the_rescue_and_the_retry(
    cli: Cli, db_url: str
) -> None:
    for _ in range(2):  # running it twice adds a second run; nothing breaks
        result = cli("--url", db_url, "demo", "--workers", "2", "--tasks", "6")
        assert result.code == 0, result.err
        assert "every task completed once: yes (6/6)" in result.out
        assert "rescued: task 1" in result.out
        assert "retried: task 3: attempt 1 failed" in result.out
        assert "Traceback" not in result.err  # the worker's logging stays the host's
        assert "buckets of" in result.out and "█ completed" in result.out
    runs = cli("--url", db_url, "--json", "runs", "list").json()["items"]
    assert len(runs) == 2
