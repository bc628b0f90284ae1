"""Runs: create, read, page, update, count, delete (with everything it owns), snapshot."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import (
    AgentStore,
    Backoff,
    NewEvent,
    RunRecord,
    RunStatus,
    SnapshotLimits,
    TaskDraft,
    TaskStatus,
)
from agentstore.errors import ConflictError, NotFoundError, ValidationError
from agentstore.models import Base
from tests.orchestrator.conftest import drafts
from tests.orchestrator.test_tasks import LEASE, refused


def test_a_new_run_is_planning_and_journals_its_creation(store: AgentStore) -> None:
    run = store.runs.create("ship it", "/repo")
    assert (run.status, run.cycle_count, run.replan_count) == (RunStatus.PLANNING, 0, 0)
    assert store.runs.get(run.id) == run
    assert [e.kind for e in store.events.list(run.id)] == ["run_created"]


@pytest.mark.parametrize(
    ("goal", "repo_path", "status"), [("", "/r", "planning"), ("g", "/r", "sleeping")]
)
def test_a_bad_run_is_refused(store: AgentStore, goal: str, repo_path: str, status: str) -> None:
    refused(store, ValidationError, lambda: store.runs.create(goal, repo_path, status))


def test_an_unknown_run_is_not_found(store: AgentStore) -> None:
    for call in (
        lambda: store.runs.get(uuid.uuid4()),
        lambda: store.runs.update(uuid.uuid4(), status="running"),
        lambda: store.runs.increment_cycle(uuid.uuid4()),
        lambda: store.runs.delete(uuid.uuid4()),
        lambda: store.runs.snapshot(uuid.uuid4()),
    ):
        refused(store, NotFoundError, call)


def test_update_changes_only_the_fields_given(store: AgentStore, run: RunRecord) -> None:
    task = store.tasks.replace_pending(run.id, drafts(1))[0]
    updated = store.runs.update(run.id, status="running", current_task_id=task.id)
    assert (updated.status, updated.current_task_id, updated.summary) == (
        RunStatus.RUNNING,
        task.id,
        None,
    )
    updated = store.runs.update(run.id, summary="half way")
    assert (updated.status, updated.current_task_id, updated.summary) == (
        RunStatus.RUNNING,
        task.id,
        "half way",
    )
    assert store.runs.update(run.id, current_task_id=None).current_task_id is None
    assert updated.updated_at >= run.updated_at


def test_update_to_an_unknown_task_is_not_found(store: AgentStore, run: RunRecord) -> None:
    refused(store, NotFoundError, lambda: store.runs.update(run.id, current_task_id=uuid.uuid4()))


def test_counters_increment_atomically(store: AgentStore, run: RunRecord) -> None:
    store.runs.increment_cycle(run.id)
    store.runs.increment_cycle(run.id)
    after = store.runs.increment_replan(run.id)
    assert (after.cycle_count, after.replan_count) == (2, 1)


def test_listing_pages_newest_first_through_every_run_once(store: AgentStore) -> None:
    created = [
        store.runs.create(f"goal {n}", "/r", "running" if n % 2 else "planning") for n in range(7)
    ]
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = store.runs.list(limit=3, cursor=cursor)
        seen += [run.id for run in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [run.id for run in reversed(created)]
    running = store.runs.list(status="running").items
    assert [r.id for r in running] == [r.id for r in reversed(created) if r.status == "running"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoieCIsInAiOltdfQ"])
def test_a_bad_cursor_is_refused(store: AgentStore, cursor: str) -> None:
    with pytest.raises(ValidationError):
        store.runs.list(cursor=cursor)


def counts_by_table(store: AgentStore, run_id: uuid.UUID) -> dict[str, int]:
    counts: dict[str, Any] = {}
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            column = table.c.get("run_id") if table.name != "runs" else table.c.id
            if column is not None:
                query = sa.select(sa.func.count()).select_from(table).where(column == run_id)
                counts[table.name] = connection.execute(query).scalar_one()
    return counts


def populate(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(2))
    task = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)[0]
    store.attempts.add(run.id, task.id, 1, "completed", "ok")
    store.agents.save(run.id, "strategy")
    store.artifacts.add(run.id, "diff", "/p")
    store.approvals.add(run.id, "checker", "approved", "good")
    store.checkpoints.add(run.id, "running")
    store.runs.update(run.id, current_task_id=task.id)


def test_delete_removes_the_run_and_everything_it_owns(store: AgentStore, run: RunRecord) -> None:
    other = store.runs.create("other", "/o")
    populate(store, run)
    populate(store, other)
    store.runs.delete(run.id)
    assert set(counts_by_table(store, run.id).values()) == {0}
    assert all(counts_by_table(store, other.id).values())


def test_a_snapshot_has_every_part_of_the_run(store: AgentStore, run: RunRecord) -> None:
    populate(store, run)
    snapshot = store.runs.snapshot(run.id)
    assert snapshot.run.id == run.id
    assert set(snapshot.agents) == {"strategy"}
    assert [len(snapshot.tasks[s]) for s in TaskStatus] == [1, 1, 0, 0, 0, 0]
    assert len(snapshot.recent_attempts) == 1
    assert [e.kind for e in snapshot.recent_events] == ["run_created"]
    assert len(snapshot.approvals) == len(snapshot.artifacts) == 1
    assert snapshot.latest_checkpoint is not None


def test_snapshot_lists_are_bounded(store: AgentStore, run: RunRecord) -> None:
    store.events.add_many(NewEvent(run.id, "s", "tick", str(n)) for n in range(120))
    snapshot = store.runs.snapshot(run.id)
    assert len(snapshot.recent_events) == 50
    assert snapshot.recent_events[-1].message == "119"


def test_run_records_are_immutable_with_aware_times(store: AgentStore, run: RunRecord) -> None:
    assert run.created_at.tzinfo is not None
    with pytest.raises(AttributeError):
        run.goal = "other"  # type: ignore[misc]


def test_a_snapshot_takes_limits_and_says_what_it_cut(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(5)])
    for n in range(4):
        store.events.add(run.id, "w", "note", f"note {n}")
    limits = SnapshotLimits(tasks_per_status=3, events=2)
    snapshot = store.runs.snapshot(run.id, limits)
    assert [t.title for t in snapshot.tasks[TaskStatus.PENDING]] == ["t0", "t1", "t2"]
    assert [e.message for e in snapshot.recent_events] == ["note 2", "note 3"]
    assert snapshot.truncated == {"tasks.pending", "recent_events"}
    whole = store.runs.snapshot(run.id)
    assert len(whole.tasks[TaskStatus.PENDING]) == 5 and whole.truncated == frozenset()
    exact = store.runs.snapshot(run.id, SnapshotLimits(tasks_per_status=5, events=5))
    assert exact.truncated == frozenset()  # 5 tasks, 5 events (run_created and 4 notes)
    for bad in (SnapshotLimits(events=0), {"events": 2}):
        with pytest.raises(ValidationError):
            store.runs.snapshot(run.id, bad)  # type: ignore[arg-type]


def test_a_snapshot_lists_each_status_as_the_task_list_does(
    store: AgentStore, run: RunRecord
) -> None:
    # Every status has tasks, most over the limit, with every kind of field set: the
    # snapshot reads them all in one statement, the list one status at a time.
    store.tasks.replace_pending(run.id, drafts(4))
    backoff = Backoff(timedelta(seconds=2), timedelta(seconds=30))
    plan = [
        TaskDraft(f"t{n}", "o", acceptance_criteria=[f"c{n}"], priority=n % 2, backoff=backoff)
        for n in range(14)
    ]
    store.tasks.replace_pending(run.id, plan)  # abandons the first four
    held = store.tasks.claim_next("w", run_id=run.id, lease=LEASE, limit=10)
    for task in held[:4]:
        store.tasks.complete(task.id, "done", attempt=task.attempt)
    store.tasks.block(held[4].id, "stuck", "no-disk", attempt=held[4].attempt)
    store.tasks.wait(held[5].id, {"ask": "which?"}, attempt=held[5].attempt)
    store.tasks.cancel(held[6].id, "not needed")  # asks its holder to stop
    snapshot = store.runs.snapshot(run.id, SnapshotLimits(tasks_per_status=3))
    for status in TaskStatus:
        listed = store.tasks.list(run.id, [status])
        assert listed, status
        assert snapshot.tasks[status] == listed[:3], status
        assert (f"tasks.{status.value}" in snapshot.truncated) == (len(listed) > 3), status


def test_an_increment_with_the_count_seen_is_safe_to_repeat(
    store: AgentStore, run: RunRecord
) -> None:
    assert store.runs.increment_cycle(run.id, expected=0).cycle_count == 1
    assert store.runs.increment_cycle(run.id, expected=0).cycle_count == 1  # a retry
    assert store.runs.increment_cycle(run.id, expected=1).cycle_count == 2
    refused(store, ConflictError, lambda: store.runs.increment_cycle(run.id, expected=0))
    assert store.runs.increment_replan(run.id, expected=0).replan_count == 1
    assert store.runs.increment_replan(run.id).replan_count == 2  # without: always adds
    refused(store, ValidationError, lambda: store.runs.increment_cycle(run.id, expected=-1))
