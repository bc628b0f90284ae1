"""Retention: old executions go with their children, in bounded batches, counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from agentstore import AgentStore
from agentstore.models import Execution, ExecutionInteraction, ExecutionToolCall


def age(store: AgentStore, days: int, *ids: object) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            sa.update(Execution)
            .where(Execution.id.in_(ids))
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


def counts(store: AgentStore) -> tuple[int, int, int]:
    with store.engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (Execution, ExecutionToolCall, ExecutionInteraction)
        )


def with_children(store: AgentStore, scope: str) -> object:
    execution = store.executions.create(scope, "x")
    store.executions.record_tool_call(scope, execution.id, "a.b")
    store.executions.record_tool_call(scope, execution.id, "a.c")
    store.executions.request_interaction(scope, execution.id, "form")
    return execution.id


def test_sweep_deletes_old_executions_with_their_children(store: AgentStore) -> None:
    old = [with_children(store, "s1") for _ in range(7)]
    with_children(store, "s1")  # recent: kept
    age(store, 40, *old)
    assert store.executions.sweep(timedelta(days=30), batch_size=3) == 7
    assert counts(store) == (1, 2, 1)
    assert store.executions.sweep(timedelta(days=30)) == 0


def test_sweep_can_be_limited_to_one_scope(store: AgentStore) -> None:
    mine = with_children(store, "mine")
    theirs = with_children(store, "theirs")
    age(store, 40, mine, theirs)
    assert store.executions.sweep(timedelta(days=30), scope_id="mine") == 1
    assert counts(store) == (1, 2, 1)
