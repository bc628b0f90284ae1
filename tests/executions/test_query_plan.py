"""On PostgreSQL, the default listing of one scope reads an index, not the whole table."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.dialects import postgresql

from agentstore import AgentStore, ExecutionQuery
from agentstore.executions.query import page_statement
from tests.executions.conftest import seed


def explain(store: AgentStore, query: ExecutionQuery) -> str:
    statement = page_statement(store.backend, "scope-7", query)
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
    return "\n".join(rows)


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_the_default_listing_of_a_scope_uses_an_index(store: AgentStore) -> None:
    rng = random.Random(7)
    for scope in range(20):
        seed(store, f"scope-{scope}", 250, rng)  # 5,000 executions
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    for query in (ExecutionQuery(), ExecutionQuery(statuses=["failed"])):
        plan = explain(store, query)
        print(plan)
        assert "Index" in plan and "ix_executions_scope_id" in plan, plan
        assert "Seq Scan on executions" not in plan, plan
