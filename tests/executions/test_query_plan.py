"""On PostgreSQL, listing one scope reads an index, not the whole table: the default page,
one filter, and the three filters of the listing benchmark (status, tool glob, time
range). The benchmark showed why the ANALYZE matters: without statistics the planner
took the status index and sorted every match; with them it walks the scope's
(created_at, id) index backward and stops at the page's end. On SQLite, meta's
top-tools facet starts from the matching executions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.dialects import postgresql

from agentstore import AgentStore, ExecutionQuery
from agentstore.executions.query import page_statement
from tests.executions.conftest import seed
from tests.support.plans import plan_of, statements_run_by


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
    now = datetime.now(UTC)
    three_filters = ExecutionQuery(
        statuses=["completed", "failed"],
        tools=["github.*"],
        created_from=now - timedelta(days=14),
        created_to=now,
    )
    for query in (ExecutionQuery(), ExecutionQuery(statuses=["failed"]), three_filters):
        plan = explain(store, query)
        print(plan)
        assert "Index" in plan and "ix_executions_scope_id" in plan, plan
        assert "Seq Scan on executions" not in plan, plan


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_listing_and_meta_are_planned_for_their_parameters(store: AgentStore) -> None:
    # A generic plan (what PostgreSQL may switch to once psycopg prepares a statement
    # run five times) sorted every match of the benchmark's three-filter listing, and
    # parallel workers made the all-scopes created_at index look cheapest.
    def list_and_meta() -> None:
        for _ in range(7):
            store.executions.list("scope-1", ExecutionQuery(statuses=["failed"]))
            store.executions.meta("scope-1", ExecutionQuery(statuses=["failed"]))

    seen = [sql for sql, _ in statements_run_by(store, list_and_meta)]
    settings_at = [i for i, sql in enumerate(seen) if "plan_cache_mode" in sql]
    assert len(settings_at) == 14  # once per read transaction, before its first read
    assert settings_at[0] == 0
    for i in settings_at:
        assert "force_custom_plan" in seen[i] and "max_parallel_workers_per_gather" in seen[i]
        assert "FROM execution" in seen[i + 1], seen[i + 1]


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_meta_reaches_tool_calls_through_the_matching_executions(store: AgentStore) -> None:
    # The top-tools facet once joined all of the scope's tool calls to the filtered
    # executions: at 1M executions SQLite took 240-340 ms walking them. Materializing
    # the matching executions first makes it probe each one's tool calls by index
    # (about 60 ms there). Without statistics (agentstore never runs ANALYZE on SQLite)
    # SQLite's plan does not depend on the table's size, so a small table shows it.
    # PostgreSQL plans by statistics: on a table this small it rightly
    # hashes the whole of it, and at 1M it chose the same probe (EXPLAIN ANALYZE in the
    # benchmark's database: a nested loop from the materialized set into
    # ix_execution_tool_calls_scope_id_execution_id_started_at, 24 ms).
    rng = random.Random(11)
    for scope in range(10):
        seed(store, f"scope-{scope}", 300, rng)
    # No tool filter: the facet is then the only reader of tool calls.
    query = ExecutionQuery(statuses=["failed"])
    seen = statements_run_by(store, lambda: store.executions.meta("scope-7", query))
    [(sql, parameters)] = [(sql, p) for sql, p in seen if "execution_tool_calls" in sql]
    plan = plan_of(store, sql, parameters)
    assert "MATERIALIZE matching" in plan, plan
    assert "ix_execution_tool_calls_scope_id_execution_id" in plan, plan
    assert "ix_execution_tool_calls_scope_id_tool_path" not in plan, plan
