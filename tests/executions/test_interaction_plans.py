"""The queries of pending interactions read the partial indexes of pending questions,
never the decided ones: the inbox (of one scope and of all) and expiry (of one scope and
of all), on both databases, among thousands of decided questions."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from agentstore import AgentStore
from agentstore.models import ExecutionInteraction
from tests.executions.conftest import BASE_TIME, seed
from tests.support.databases import DIALECTS
from tests.support.plans import plan_of, statements_run_by

# SQLite and PostgreSQL only: PgBouncer passes query plans through as they are, and the
# pooled paths (transactions, autocommit steps, retries) are held by the other suites.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)


@pytest.fixture
def crowded(sync_store: AgentStore) -> AgentStore:
    """20 scopes of 200 executions with decided questions, and 100 pending ones each
    (with deadlines well ahead: expiry finds none, through its index)."""
    rng = random.Random(11)
    questions = []
    for n in range(20):
        executions = seed(sync_store, f"scope-{n}", 200, rng)
        for execution in executions[:100]:
            questions.append(
                {
                    "id": uuid.uuid4(),
                    "scope_id": execution.scope_id,
                    "execution_id": execution.id,
                    "status": "pending",
                    "kind": "form",
                    "expires_at": BASE_TIME + timedelta(days=3650),
                    "created_at": execution.created_at,
                    "updated_at": execution.created_at,
                }
            )
    with sync_store.engine.begin() as connection:
        connection.execute(
            sa.update(ExecutionInteraction).values(status="resolved")
        )  # seed's questions all decided
        connection.execute(sa.insert(ExecutionInteraction), questions)
        connection.exec_driver_sql("ANALYZE")
    return sync_store


CALLS: dict[str, tuple[Callable[[AgentStore], object], str]] = {
    "inbox of a scope": (
        lambda s: s.executions.inbox("scope-3"),
        "ix_execution_interactions_pending_scope_id_created_at_id",
    ),
    "inbox of every scope": (
        lambda s: s.executions.inbox(),
        "ix_execution_interactions_pending_created_at_id",
    ),
    "expiry of a scope": (
        lambda s: s.executions.expire_interactions(scope_id="scope-3"),
        "ix_execution_interactions_pending_scope_id_expires_at",
    ),
    "expiry of every scope": (
        lambda s: s.executions.expire_interactions(),
        "ix_execution_interactions_pending_expires_at",
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_pending_questions_are_found_through_their_index(crowded: AgentStore, call: str) -> None:
    run, index = CALLS[call]
    statements = statements_run_by(crowded, lambda: run(crowded))
    [(sql, parameters)] = [
        (sql, parameters) for sql, parameters in statements if "execution_interactions" in sql
    ][:1]
    plan = plan_of(crowded, sql, parameters)
    # PostgreSQL picks among the partial indexes by cost (at this size, either of a
    # few hundred pending rows); SQLite takes the one made for the query.
    assert "ix_execution_interactions_pending_" in plan, plan
    assert "Seq Scan on execution_interactions" not in plan, plan
    if crowded.backend.name == "sqlite":
        assert index in plan, plan
