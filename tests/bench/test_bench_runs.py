"""The benchmarks keep working: each runs at smoke-test scale on both dialects and
reports every drain exactly once. (Their figures are not checked here: speed is
measured by ``python -m bench``, never asserted in tests.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.__main__ import BENCHMARKS
from tests.cli.conftest import REPO

pytestmark = pytest.mark.slow


def test_every_benchmark_runs_at_smoke_scale(dialect: str, request: pytest.FixtureRequest) -> None:
    command = [sys.executable, "-m", "bench", "--quick", "--repeat", "1", "--dialect", dialect]
    if dialect == "postgresql":
        command += ["--postgres-url", request.getfixturevalue("postgres_admin_url")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("claim", "append", "peers", "embedded"))
    ]
    drains = [line for line in rows if "drains" in line]
    assert drains and all("exactly once: 0 double claims, 0 lost" in line for line in drains)
    for benchmark in BENCHMARKS:
        assert f"== {benchmark}" in result.stdout
