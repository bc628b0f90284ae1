"""Appends with the caller's id: recording again the same execution or tool call (a retry
after a lost reply) returns the stored record and writes nothing; another write under the
same id is a ``ConflictError`` that changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from agentstore import AgentStore, NewToolCall
from agentstore.errors import ConflictError, NotFoundError
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump

SCOPE = "tenant-1"


def test_creating_an_execution_again_returns_it(store: AgentStore) -> None:
    chosen = uuid.uuid4()
    first = store.executions.create(SCOPE, "x", id=chosen, trigger=("mcp", {"s": 1}))
    before = dump(store)
    assert store.executions.create(SCOPE, "x", id=chosen, trigger=("mcp", {"s": 1})) == first
    assert dump(store) == before
    refused(store, ConflictError, lambda: store.executions.create(SCOPE, "y", id=chosen))
    refused(
        store,
        ConflictError,
        lambda: store.executions.create(SCOPE, "x", id=chosen, trigger=("cli", None)),
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)
    refused(
        store, ConflictError, lambda: store.executions.create(SCOPE, "x", id=chosen, started_at=at)
    )


def test_recording_a_tool_call_again_returns_it(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    chosen = uuid.uuid4()
    first = store.executions.record_tool_call(
        SCOPE, execution.id, "github.issues.list", args={"repo": "a/b"}, id=chosen
    )
    before = dump(store)
    again = store.executions.record_tool_call(
        SCOPE, execution.id, "github.issues.list", args={"repo": "a/b"}, id=chosen
    )
    assert dump(store) == before
    assert again == store.executions.list_tool_calls(SCOPE, execution.id)[0]
    assert (again.id, again.args, again.status) == (first.id, first.args, first.status)
    assert store.executions.get(SCOPE, execution.id).execution.tool_call_count == 1
    refused(
        store,
        ConflictError,
        lambda: store.executions.record_tool_call(
            SCOPE, execution.id, "github.issues.list", args={"repo": "c/d"}, id=chosen
        ),
    )


def test_a_retried_batch_records_only_the_new_calls(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    ids = [uuid.uuid4() for _ in range(3)]
    batch = [NewToolCall(f"tool.{n}", {"n": n}, id=ids[n]) for n in range(2)]
    assert store.executions.record_tool_calls(SCOPE, execution.id, batch) == ids[:2]
    longer = [*batch, NewToolCall("tool.2", {"n": 2}, id=ids[2])]
    assert store.executions.record_tool_calls(SCOPE, execution.id, longer) == ids
    calls = store.executions.list_tool_calls(SCOPE, execution.id)
    assert sorted(c.id for c in calls) == sorted(ids)
    assert store.executions.get(SCOPE, execution.id).execution.tool_call_count == 3
    changed = [NewToolCall("tool.0", {"n": 99}, id=ids[0]), NewToolCall("tool.3", id=uuid.uuid4())]
    refused(
        store,
        ConflictError,
        lambda: store.executions.record_tool_calls(SCOPE, execution.id, changed),
    )


def test_a_call_with_its_id_on_a_missing_execution_is_not_found(store: AgentStore) -> None:
    call = NewToolCall("tool", id=uuid.uuid4())
    refused(
        store,
        NotFoundError,
        lambda: store.executions.record_tool_calls(SCOPE, uuid.uuid4(), [call]),
    )
