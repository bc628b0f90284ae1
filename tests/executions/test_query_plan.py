"""On PostgreSQL, listing one scope reads an index, not the whole table: the default page,
one filter, and the three filters of the listing benchmark (status, tool glob, time
range). The benchmark showed why the ANALYZE matters: without statistics the planner
took the status index and sorted every match; with them it walks the scope's
(created_at, id) index backward and stops at the page's end."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
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
    seen: list[str] = []
    sa.event.listen(
        store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql)
    )
    for _ in range(7):
        store.executions.list("scope-1", ExecutionQuery(statuses=["failed"]))
        store.executions.meta("scope-1", ExecutionQuery(statuses=["failed"]))
    settings_at = [i for i, sql in enumerate(seen) if "plan_cache_mode" in sql]
    assert len(settings_at) == 14  # once per read transaction, before its first read
    assert settings_at[0] == 0
    for i in settings_at:
        assert "force_custom_plan" in seen[i] and "max_parallel_workers_per_gather" in seen[i]
        assert "FROM execution" in seen[i + 1], seen[i + 1]
