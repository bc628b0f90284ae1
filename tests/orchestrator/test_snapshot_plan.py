"""A snapshot reads each status's first tasks in one statement, a branch per status:
each branch reads the run's tasks of that status through an index and stops at the
limit, so a run with a long history costs a snapshot no more than a short one.

The plan is the database's, whichever face sent the statement: this runs on the sync face."""

from __future__ import annotations

import pytest

from agentstore import AgentStore, TaskStatus
from tests.orchestrator.conftest import drafts
from tests.support.databases import DIALECTS
from tests.support.plans import plan_of, statements_run_by

pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)

RUNS = 3
TASKS_PER_RUN = 3_000


def test_each_status_is_read_through_an_index_up_to_its_limit(sync_store: AgentStore) -> None:
    store = sync_store
    runs = [store.runs.create(f"goal {n}", "/repo") for n in range(RUNS)]
    for run in runs:
        store.tasks.replace_pending(run.id, drafts(TASKS_PER_RUN))
        store.tasks.claim_next("w", run_id=run.id, limit=TASKS_PER_RUN // 3)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")

    statements = statements_run_by(store, lambda: store.runs.snapshot(runs[1].id))
    [(sql, parameters)] = [(s, p) for s, p in statements if "FROM tasks" in s]
    plan = plan_of(store, sql, parameters)
    if store.backend.name == "postgresql":
        assert "Seq Scan" not in plan, plan
        assert plan.count("Limit") == len(TaskStatus), plan
        assert plan.count("Index Scan") + plan.count("Index Only Scan") >= len(TaskStatus), plan
    else:
        lines = plan.splitlines()
        assert "SCAN tasks" not in lines, plan
        searches = [line for line in lines if line.startswith("SEARCH tasks USING INDEX")]
        assert len(searches) == len(TaskStatus), plan
        assert all("run_id=? AND status=?" in line for line in searches), plan
