"""``runs.sweep``: runs that ended are deleted with everything under them, in bounded
batches, with an exact count per table; live runs and recent ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, SweepCounts, TaskDraft
from agentstore.errors import NotFoundError, ValidationError
from agentstore.models import Base

LEASE = timedelta(minutes=1)


def a_full_run(store: AgentStore, status: str) -> Any:
    """A run with one row or more in every table under it, then moved to ``status``."""
    run = store.runs.create("g", "/r", "running")
    store.tasks.replace_pending(run.id, [TaskDraft("first", "o"), TaskDraft("second", "o")])
    [task] = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    store.tasks.complete(task.id, "done", attempt=task.attempt)
    store.events.add(run.id, "w", "note", "a note")
    store.artifacts.add(run.id, "diff", "/r/a.diff")
    store.approvals.add(run.id, "checker", "approved", "fine")
    store.checkpoints.add(run.id, "running", {"n": 1})
    store.agents.add_turns(run.id, "strategist", 2)
    return store.runs.update(run.id, status=status)


def rows_of(store: AgentStore, run_id: Any) -> dict[str, int]:
    """How many rows each table has for the run."""
    counts = {}
    with store.engine.connect() as connection:
        for name, table in Base.metadata.tables.items():
            column = table.c.id if name == "runs" else table.c.get("run_id")
            if column is not None:
                query = sa.select(sa.func.count()).where(column == run_id)
                counts[name] = connection.execute(query).scalar_one()
    return counts


def test_a_sweep_deletes_the_runs_that_ended_before_the_cutoff_with_everything_under_them(
    store: AgentStore,
) -> None:
    old_done = a_full_run(store, "completed")
    old_failed = a_full_run(store, "failed")
    live = a_full_run(store, "running")
    recent = a_full_run(store, "cancelled")
    assert old_failed.updated_at < live.updated_at < recent.updated_at
    before = rows_of(store, old_done.id)
    assert all(before.values())  # every table under the run has rows

    cutoff = live.updated_at  # the two older runs ended before it; the recent one after
    assert store.runs.sweepable(cutoff) == 2
    counts = store.runs.sweep(cutoff)

    doubled = {name: 2 * n for name, n in before.items()}
    assert counts == SweepCounts(**doubled)
    for gone in (old_done, old_failed):
        with pytest.raises(NotFoundError):
            store.runs.get(gone.id)
        assert set(rows_of(store, gone.id).values()) == {0}
    assert rows_of(store, live.id) == rows_of(store, recent.id) == before
    assert store.runs.sweepable(cutoff) == 0
    assert store.runs.sweep(cutoff) == SweepCounts()


def test_a_sweep_goes_in_batches_and_deletes_only_the_statuses_asked_for(
    store: AgentStore,
) -> None:
    done = [store.runs.create("g", "/r", "completed") for _ in range(5)]
    failed = store.runs.create("g", "/r", "failed")
    cutoff = timedelta(0)  # everything that ended up to now
    assert store.runs.sweep(cutoff, statuses=["completed"], batch_size=2).runs == 5
    for run in done:
        with pytest.raises(NotFoundError):
            store.runs.get(run.id)
    assert store.runs.get(failed.id).status == "failed"


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        (["running"], "not \\['running'\\]"),
        (["completed", "paused"], "not \\['paused'\\]"),
        ([], "at least one"),
        ("completed", "must be a list"),
        (["finished"], "must be one of"),
    ],
)
def test_a_sweep_deletes_only_runs_that_ended(
    store: AgentStore, statuses: Any, message: str
) -> None:
    run = store.runs.create("g", "/r", "running")
    with pytest.raises(ValidationError, match=message):
        store.runs.sweep(timedelta(0), statuses=statuses)
    with pytest.raises(ValidationError, match=message):
        store.runs.sweepable(timedelta(0), statuses=statuses)
    assert store.runs.get(run.id).status == "running"


@pytest.mark.parametrize("older_than", ["30d", None, 5])
def test_a_sweep_needs_a_time_or_an_age(store: AgentStore, older_than: Any) -> None:
    with pytest.raises(ValidationError, match="older_than"):
        store.runs.sweep(older_than)
