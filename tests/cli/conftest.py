from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class Result:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli() -> Cli:
    """Run ``python -m agentstore ARGS`` as a person would, in a subprocess."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 300) -> Result:
        unset = ("AGENTSTORE_DATABASE_URL", "AGENTSTORE_SCHEMA")
        env = {k: v for k, v in os.environ.items() if k not in unset}
        completed = subprocess.run(
            [sys.executable, "-m", "agentstore", *args],
            capture_output=True,
            text=True,
            cwd=cwd or REPO,
            env=env,
            timeout=timeout,
        )
        return Result(completed)

    return run
