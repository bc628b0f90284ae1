"""Claims read an index in their own order and stop at the limit, at 100,000 pending
tasks of which half are scheduled for later: neither database sorts the pending tasks.
A claim's rescue of expired leases reads the index of held tasks' leases. (With an index
on (priority, created_at) PostgreSQL sorted every pending task: 12.8 ms a claim at
100,000, against 0.13 ms with the claim-order index.)

The plan is the database's, whichever face sent the statement: this runs on the sync face."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, TaskDraft
from agentstore.models import Task
from tests.support.databases import DIALECTS
from tests.support.plans import NEW_ID, plan_of, statements_run_by

# A plan is the server's: a pooler in front changes nothing of it.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)

MINUTE = timedelta(minutes=1)
RUNS = 10
TASKS_PER_RUN = 10_000


def claim_plans(store: AgentStore, call: object) -> tuple[str, str]:
    """The plans of a claim's two parts: the rescue of expired leases, the claim. Two
    statements on SQLite; one on PostgreSQL (its plan holds both parts)."""
    updates = [(sql, p) for sql, p in statements_run_by(store, call) if "UPDATE tasks" in sql]  # type: ignore[arg-type]
    if store.backend.data_modifying_ctes:
        [step] = updates
        return plan_of(store, *step), plan_of(store, *step)
    [rescue, claim] = updates
    return plan_of(store, *rescue), plan_of(store, *claim)


def copy_of_plan(
    store: AgentStore, source: uuid.UUID, target: uuid.UUID, priority: int
) -> sa.Insert:
    """The source run's tasks again under the target run, at ``priority``, with new ids:
    a seed in one statement each (a plan of 10,000 through ``replace_pending`` takes
    seconds on PostgreSQL)."""
    tasks = Task.__table__
    kept = [column for column in tasks.c if column.name not in ("id", "run_id", "priority")]
    copied = sa.select(
        sa.literal_column(NEW_ID[store.backend.name]),
        sa.literal(target, tasks.c.run_id.type),
        sa.literal(priority),
        *kept,
    ).where(tasks.c.run_id == source)
    return sa.insert(tasks).from_select(
        ["id", "run_id", "priority", *(c.name for c in kept)], copied
    )


def sorts(plan: str) -> bool:
    return "Sort" in plan or "TEMP B-TREE" in plan


def test_claims_read_their_index_in_order_at_100_000_pending_tasks(
    sync_store: AgentStore,
) -> None:
    store = sync_store
    runs = [store.runs.create(f"goal {n}", "/repo") for n in range(RUNS)]
    plan = [
        TaskDraft(f"task {k}", "o", delay=timedelta(hours=1) if k % 2 else None)
        for k in range(TASKS_PER_RUN)
    ]
    store.tasks.replace_pending(runs[0].id, plan)
    with store.engine.begin() as connection:
        for n, run in enumerate(runs[1:], start=1):
            connection.execute(copy_of_plan(store, runs[0].id, run.id, priority=n % 3))
        pending = connection.exec_driver_sql("SELECT count(*) FROM tasks WHERE status = 'pending'")
        assert pending.scalar_one() == RUNS * TASKS_PER_RUN
        connection.exec_driver_sql("ANALYZE")

    rescue, across = claim_plans(store, lambda: store.tasks.claim_next("w", lease=MINUTE))
    assert "ix_tasks_in_progress_lease_expires_at" in rescue, rescue
    assert "ix_tasks_pending_claim_order" in across and not sorts(across), across

    _, in_run = claim_plans(
        store, lambda: store.tasks.claim_next("w", run_id=runs[3].id, lease=MINUTE)
    )
    # In plan order through an index that starts with the run (PostgreSQL takes the
    # pending-only one; SQLite, estimating both alike, may take the one by status).
    assert "ix_tasks_pending_run_id_position_available_at" in in_run or (
        "ix_tasks_run_id_status_position (run_id=? AND status=?)" in in_run
    ), in_run
    assert not sorts(in_run), in_run
