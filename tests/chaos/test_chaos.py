"""The chaos suite at a small scale (``make chaos`` runs a larger one): worker processes
drain a run while they are SIGKILLed (at random and after a claim, inside a completion's
transaction, around its COMMIT) and frozen, their connections cut and PostgreSQL
restarted and crashed (see ``drain``). Every task is completed and journalled once."""

from __future__ import annotations

import os

import pytest

from tests.chaos import kill_points
from tests.chaos.drain import drain
from tests.support.postgres import PostgresUnavailable

pytestmark = pytest.mark.slow
KILLS = {f"kill {point}" for point in kill_points.POINTS}
KINDS = {
    "sqlite": {"sigkill", "sigstop", *KILLS},
    "postgresql": {"sigkill", "sigstop", "terminate", "restart", "crash", *KILLS},
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_drain_under_faults_completes_every_task_once(dialect: str) -> None:
    try:
        figures = drain(dialect, tasks=1500, workers=4, budget_seconds=240)
    except PostgresUnavailable as exc:  # a durable server needs the local binaries
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL's server binaries: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    print("\n" + figures.line())
    assert figures.worker_failures == []
    assert KINDS[dialect] <= set(figures.faults)  # every kind of fault was injected
    assert (figures.completed, figures.lost, figures.double_completions) == (1500, 0, 0)
    assert (figures.left_held, figures.unjournalled, figures.integrity) == (0, 0, "ok")
