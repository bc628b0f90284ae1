"""The command's tests run ``agentstore ARGS`` in this process (its ``main``, with its
output captured and its exit status), as ``python -m agentstore ARGS`` runs it, but
without a Python start per call; the tests of what only a process shows (signals, a
closed pipe, an installed wheel) start real processes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentstore.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``agentstore ARGS`` (``cwd``: where it runs, by default the repository)."""
    for name in ("AGENTSTORE_DATABASE_URL", "AGENTSTORE_SCHEMA"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, cwd: Path | None = None) -> Result:
        monkeypatch.chdir(cwd or REPO)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse's usage errors, --help
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        return Result(code, out.getvalue(), err.getvalue())

    return run
