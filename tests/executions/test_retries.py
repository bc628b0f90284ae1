"""Ending an execution, a tool call or an interaction again after it committed (a retry
after a lost reply) returns the record and writes nothing; another ending is refused and
changes nothing. ``finish`` changes only what it is given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentstore import AgentStore, ExecutionStatus
from agentstore.errors import InvalidTransitionError
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump

SCOPE = "tenant-1"


def repeated(store: AgentStore, call: Callable[[], Any]) -> Any:
    """``call`` succeeds, then made again returns an equal record and changes nothing."""
    first = call()
    before = dump(store)
    assert call() == first
    assert dump(store) == before
    return first


def test_a_finish_made_again_returns_the_execution(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    done = repeated(
        store,
        lambda: store.executions.finish(
            SCOPE, execution.id, "completed", result={"rows": [1, 2.5, "é"]}, logs=["a"]
        ),
    )
    assert (done.status, done.result, done.logs) == (
        ExecutionStatus.COMPLETED,
        {"rows": [1, 2.5, "é"]},
        ["a"],
    )
    for other in (
        lambda: store.executions.finish(SCOPE, execution.id, "failed"),
        lambda: store.executions.finish(SCOPE, execution.id, "completed", result={"rows": []}),
        lambda: store.executions.finish(SCOPE, execution.id, "completed", error_text="e"),
    ):
        refused(store, InvalidTransitionError, other)


def test_a_finish_at_a_given_time_made_again_returns_the_execution(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    at = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
    repeated(store, lambda: store.executions.finish(SCOPE, execution.id, "failed", completed_at=at))
    later = datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)
    refused(
        store,
        InvalidTransitionError,
        lambda: store.executions.finish(SCOPE, execution.id, "failed", completed_at=later),
    )


def test_finish_keeps_what_it_is_not_given(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.update(SCOPE, execution.id, result=[42], logs=["started"], error_text="w")
    done = store.executions.finish(SCOPE, execution.id, "completed")
    assert (done.result, done.logs, done.error_text) == ([42], ["started"], "w")
    assert done.completed_at is not None and done.duration_ms is not None


def test_finish_clears_what_it_is_given_as_none(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.update(SCOPE, execution.id, result=[42], logs=["started"], error_text="w")
    done = store.executions.finish(
        SCOPE, execution.id, "completed", result=None, logs=None, error_text=None
    )
    assert (done.result, done.logs, done.error_text) == (None, None, None)


def test_a_tool_call_finished_again_returns_it(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    call = store.executions.record_tool_call(SCOPE, execution.id, "github.issues.list")
    done = repeated(
        store,
        lambda: store.executions.finish_tool_call(SCOPE, call.id, "completed", result={"n": 3}),
    )
    assert done.result == {"n": 3}
    for other in (
        lambda: store.executions.finish_tool_call(SCOPE, call.id, "failed", error_text="x"),
        lambda: store.executions.finish_tool_call(SCOPE, call.id, "completed", result={"n": 4}),
    ):
        refused(store, InvalidTransitionError, other)


def test_an_interaction_answered_again_returns_it(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    asked = store.executions.request_interaction(SCOPE, execution.id, "approve")
    answered = repeated(
        store,
        lambda: store.executions.resolve_interaction(SCOPE, asked.id, {"ok": True}, "secret"),
    )
    assert answered.response == {"ok": True}
    assert store.executions.get(SCOPE, execution.id).execution.status is ExecutionStatus.RUNNING
    for other in (
        lambda: store.executions.resolve_interaction(SCOPE, asked.id, {"ok": False}, "secret"),
        lambda: store.executions.resolve_interaction(SCOPE, asked.id, {"ok": True}, "other"),
        lambda: store.executions.resolve_interaction(SCOPE, asked.id, cancelled=True),
    ):
        refused(store, InvalidTransitionError, other)
