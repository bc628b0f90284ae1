"""Claims read an index in their own order and stop at the limit, at 100,000 pending
tasks of which half are scheduled for later: neither database sorts the pending tasks.
A claim's rescue of expired leases reads the index of held tasks' leases. (With an index
on (priority, created_at) PostgreSQL sorted every pending task: 12.8 ms a claim at
100,000, against 0.13 ms with the claim-order index.)

The plan is the database's, whichever face sent the statement: this runs on the sync face."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentstore import AgentStore, TaskDraft
from tests.support.databases import DIALECTS
from tests.support.plans import plan_of, statements_run_by

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


def sorts(plan: str) -> bool:
    return "Sort" in plan or "TEMP B-TREE" in plan


def test_claims_read_their_index_in_order_at_100_000_pending_tasks(
    sync_store: AgentStore,
) -> None:
    store = sync_store
    runs = [store.runs.create(f"goal {n}", "/repo") for n in range(RUNS)]
    for n, run in enumerate(runs):
        plan = [
            TaskDraft(f"task {k}", "o", priority=n % 3, delay=timedelta(hours=1) if k % 2 else None)
            for k in range(TASKS_PER_RUN)
        ]
        store.tasks.replace_pending(run.id, plan)
    with store.engine.begin() as connection:
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
