"""Every Python example of the README runs as written, on the embedded default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_a_readme_example_runs_as_written(number: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AGENTSTORE_DATABASE_URL"}
    ran = subprocess.run(
        [sys.executable, "-c", EXAMPLES[number]],
        cwd=tmp_path,  # where sqlite:///agentstore.db lands
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
