"""Tenant isolation: a caller in one scope can never read, change, list, count, sweep or
attach children to another scope's executions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstore import AgentStore, ExecutionQuery
from agentstore.errors import NotFoundError
from agentstore.models import ExecutionToolCall
from tests.support.state import dump

scopes = st.text(alphabet="abcXYZ-_%.", min_size=1, max_size=6)


@given(owner=scopes, intruder=scopes)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_another_scope_sees_and_touches_nothing(
    store: AgentStore, owner: str, intruder: str
) -> None:
    if owner == intruder:
        return
    ex = store.executions
    execution = ex.create(owner, "secret code", trigger="cli")
    call = ex.record_tool_call(owner, execution.id, "vault.read")
    question = ex.request_interaction(owner, execution.id, "form")
    before = dump(store)

    for attempt in (
        lambda: ex.get(intruder, execution.id),
        lambda: ex.finish(intruder, execution.id, "failed"),
        lambda: ex.update(intruder, execution.id, status="cancelled"),
        lambda: ex.record_tool_call(intruder, execution.id, "evil.write"),
        lambda: ex.finish_tool_call(intruder, call.id, "failed"),
        lambda: ex.request_interaction(intruder, execution.id, "phish"),
        lambda: ex.resolve_interaction(intruder, question.id, {"stolen": True}),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert ex.list(intruder).items == []
    assert ex.list(intruder, ExecutionQuery(tools=["vault.*"])).items == []
    assert ex.list_tool_calls(intruder, execution.id) == []
    assert ex.list_interactions(intruder, execution.id) == []
    assert ex.list_waiting(intruder) == []
    meta = ex.meta(intruder)
    assert (meta.total, meta.filtered, meta.top_tools) == (0, 0, [])
    assert ex.sweep(datetime.now(UTC) + timedelta(days=1), scope_id=intruder) == 0
    assert dump(store) == before
    ex.sweep(datetime.now(UTC) + timedelta(days=1), scope_id=owner)


def test_a_child_cannot_point_at_another_scopes_execution(store: AgentStore) -> None:
    """The composite foreign key refuses it even when written around the repository."""
    execution = store.executions.create("owner", "x")
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as connection:
        connection.execute(
            sa.insert(ExecutionToolCall).values(
                id=uuid.uuid4(),
                scope_id="intruder",
                execution_id=execution.id,
                status="running",
                tool_path="a.b",
                namespace="a",
                started_at=datetime.now(UTC),
            )
        )
