"""``events.prune`` and ``checkpoints.prune``: each run keeps its latest rows, or the ones
younger than a cutoff, or both; the rest go in bounded batches, counted exactly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agentstore import AgentStore, RunRecord
from agentstore.errors import ValidationError
from tests.support.databases import DIALECTS

# SQLite and PostgreSQL only: PgBouncer passes retention batches through as they are, and the
# pooled paths (transactions, autocommit steps, retries) are held by the other suites.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)


def events_of(store: AgentStore, run: RunRecord, count: int) -> list[Any]:
    for n in range(count):
        store.events.add(run.id, "w", "note", f"event {n}")
    return store.events.list(run.id, limit=1000)


def checkpoints_of(store: AgentStore, run: RunRecord, count: int) -> list[Any]:
    for n in range(count):
        store.checkpoints.add(run.id, "running", {"n": n})
    return store.checkpoints.list(run.id, limit=1000)


def messages(store: AgentStore, run: RunRecord) -> list[str]:
    return [event.message for event in store.events.list(run.id, limit=1000)]


CREATED = "Run created."  # every run's first event


def test_keeping_the_latest_events_of_one_run_deletes_its_older_ones_only(
    store: AgentStore, run: RunRecord
) -> None:
    other = store.runs.create("g", "/r")
    events_of(store, run, 7)
    events_of(store, other, 3)
    assert store.events.prunable(run.id, keep_latest=2) == 6
    assert store.events.prune(run.id, keep_latest=2, batch_size=2) == 6
    assert messages(store, run) == ["event 5", "event 6"]
    assert len(messages(store, other)) == 4
    assert store.events.prune(run.id, keep_latest=2) == 0


def test_keeping_the_latest_events_of_every_run(store: AgentStore, run: RunRecord) -> None:
    short = store.runs.create("g", "/r")
    events_of(store, run, 5)
    events_of(store, short, 2)
    store.runs.create("g", "/r")  # a run without events
    assert store.events.prunable(keep_latest=3) == 3
    assert store.events.prune(keep_latest=3, batch_size=2) == 3
    assert messages(store, run) == ["event 2", "event 3", "event 4"]
    assert messages(store, short) == [CREATED, "event 0", "event 1"]


def test_keeping_nothing_by_count_deletes_every_event_of_the_run(
    store: AgentStore, run: RunRecord
) -> None:
    events_of(store, run, 3)
    assert store.events.prune(run.id, keep_latest=0) == 4
    assert messages(store, run) == []


def test_pruning_by_age_deletes_the_events_older_than_the_cutoff_in_every_run(
    store: AgentStore, run: RunRecord
) -> None:
    other = store.runs.create("g", "/r")
    old = events_of(store, run, 3)[-1]
    events_of(store, other, 2)
    cutoff = store.events.add(run.id, "w", "note", "new").ts
    assert old.ts < cutoff
    assert store.events.prunable(older_than=cutoff) == 7
    assert store.events.prune(older_than=cutoff, batch_size=2) == 7
    assert messages(store, run) == ["new"]
    assert messages(store, other) == []


def test_by_age_and_by_count_together_an_event_is_kept_when_either_keeps_it(
    store: AgentStore, run: RunRecord
) -> None:
    old = events_of(store, run, 4)[-1]
    cutoff = store.events.add(run.id, "w", "note", "new").ts
    events_of(store, run, 1)
    assert old.ts < cutoff
    # Only "event 0" (of the second batch) is among the latest one, but "new" is young
    # enough too: the five older events go.
    assert store.events.prunable(run.id, keep_latest=1, older_than=cutoff) == 5
    assert store.events.prune(run.id, keep_latest=1, older_than=cutoff) == 5
    assert messages(store, run) == ["new", "event 0"]
    # Across every run, the same.
    assert store.events.prune(keep_latest=1, older_than=cutoff) == 0


def test_pruning_by_age_only_in_one_run(store: AgentStore, run: RunRecord) -> None:
    other = store.runs.create("g", "/r")
    events_of(store, run, 2)
    events_of(store, other, 2)
    assert store.events.prune(run.id, older_than=timedelta(0)) == 3
    assert messages(store, run) == []
    assert len(messages(store, other)) == 3


def test_a_run_keeps_following_its_journal_after_a_prune(store: AgentStore, run: RunRecord) -> None:
    events_of(store, run, 5)
    seen = store.events.tail(run.id)
    store.events.prune(run.id, keep_latest=2)
    store.events.add(run.id, "w", "note", "after")
    assert [e.message for e in store.events.tail(run.id, after_id=seen[-1].id)] == ["after"]


def test_keeping_the_latest_checkpoints_of_each_run(store: AgentStore, run: RunRecord) -> None:
    other = store.runs.create("g", "/r")
    checkpoints_of(store, run, 4)
    checkpoints_of(store, other, 1)
    assert store.checkpoints.prunable(keep_latest=2) == 2
    assert store.checkpoints.prune(keep_latest=2) == 2
    assert [c.payload["n"] for c in store.checkpoints.list(run.id)] == [2, 3]
    assert store.checkpoints.latest(run.id).payload == {"n": 3}  # type: ignore[union-attr]
    assert len(store.checkpoints.list(other.id)) == 1


def test_pruning_checkpoints_by_age(store: AgentStore, run: RunRecord) -> None:
    checkpoints_of(store, run, 3)
    assert store.checkpoints.prune(run.id, older_than=timedelta(0), batch_size=2) == 3
    assert store.checkpoints.list(run.id) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "keep_latest, older_than or both"),
        ({"keep_latest": -1}, "keep_latest"),
        ({"keep_latest": "3"}, "keep_latest"),
        ({"older_than": 5}, "older_than"),
        ({"keep_latest": 1, "batch_size": 0}, "batch_size"),
        ({"keep_latest": 1, "run_id": "not-a-uuid"}, "run_id"),
    ],
)
def test_a_prune_refuses_what_it_cannot_read_and_deletes_nothing(
    store: AgentStore, run: RunRecord, arguments: dict[str, Any], message: str
) -> None:
    events_of(store, run, 2)
    with pytest.raises(ValidationError, match=message):
        store.events.prune(**arguments)
    with pytest.raises(ValidationError, match=message):
        store.checkpoints.prune(**arguments)
    assert len(messages(store, run)) == 3
