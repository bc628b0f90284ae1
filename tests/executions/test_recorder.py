"""The recorder: one line around host code; storage faults never break that code and
are counted, never lost."""

from __future__ import annotations

import pytest

from agentstore import AgentStore, ExecutionStatus


def test_a_recorded_execution_with_tools_logs_and_result(store: AgentStore) -> None:
    with store.executions.recording("s", "code", trigger=("mcp", {"session": "abc"})) as rec:
        value = rec.tool("github.issues.list", {"repo": "a/b"}, lambda args: [args["repo"]])
        rec.log("fetched")
        rec.result({"issues": value})
    assert rec.faults == 0 and rec.execution_id is not None
    execution = store.executions.get("s", rec.execution_id).execution
    assert (execution.status, execution.result, execution.logs) == (
        ExecutionStatus.COMPLETED,
        {"issues": ["a/b"]},
        ["fetched"],
    )
    assert (execution.trigger_kind, execution.tool_call_count) == ("mcp", 1)
    assert execution.duration_ms is not None
    [call] = store.executions.list_tool_calls("s", rec.execution_id)
    assert (call.status, call.result, call.duration_ms is not None) == ("completed", ["a/b"], True)


def test_a_failing_tool_is_recorded_failed_and_its_error_raised(store: AgentStore) -> None:
    def broken(_: object) -> None:
        raise TimeoutError("upstream slow")

    with pytest.raises(TimeoutError), store.executions.recording("s", "code") as rec:
        rec.tool("slack.post", None, broken)
    assert rec.execution_id is not None
    [call] = store.executions.list_tool_calls("s", rec.execution_id)
    assert call.status == "failed" and "upstream slow" in (call.error_text or "")
    execution = store.executions.get("s", rec.execution_id).execution
    assert execution.status == "failed" and "TimeoutError" in (execution.error_text or "")


def test_an_error_ends_the_execution_failed(store: AgentStore) -> None:
    with store.executions.recording("s", "code") as rec:
        rec.error("result carried an error")
    assert rec.execution_id is not None
    assert store.executions.get("s", rec.execution_id).execution.status == "failed"


def test_ask_records_the_pause(store: AgentStore) -> None:
    with store.executions.recording("s", "code") as rec:
        question = rec.ask("form", purpose="Need a token", payload={"field": "token"})
        assert question is not None
        waiting = store.executions.list_waiting("s")
        assert [w.pending_interaction.id for w in waiting if w.pending_interaction] == [question.id]
        store.executions.resolve_interaction("s", question.id, {"token": "t"})


def test_storage_failing_mid_execution_never_breaks_the_code(store: AgentStore) -> None:
    """The tool-call table disappears while the code runs (a real failure of the
    database, not a mock): the code's own result is untouched, the fault is counted, the
    lost tool call is said, and the execution itself is saved without it."""
    with store.executions.recording("s", "code") as rec:
        with store.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE execution_tool_calls")
        value = rec.tool("github.issues.list", {}, lambda _: 42)
        rec.result(value)
    assert value == 42
    assert rec.faults == 1
    assert "no such table" in rec.fault_messages[0] or "does not exist" in rec.fault_messages[0]
    assert rec.fault_messages[1] == "1 tool calls lost: saved the execution without them"
    assert rec.execution_id is not None
    assert store.executions.get("s", rec.execution_id).execution.result == 42
