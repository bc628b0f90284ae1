"""A recorded execution is a span, with a child per tool call named as the GenAI
semantic conventions name tool execution; the recorder's own calls are their children.
Both faces, both dialects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from opentelemetry.trace import StatusCode

from agentstore import AgentStore
from tests.support.waiting import wait_until
from tests.telemetry.conftest import Spans

SECRET = "s3cr3t-tool-data"
AN_HOUR = timedelta(hours=1)  # no background save: the block's end saves it all


def test_an_execution_with_two_tool_calls_is_a_tree_of_spans(
    store: AgentStore, spans: Spans
) -> None:
    with store.executions.recording("scope", "code", flush_after=AN_HOUR) as rec:
        rec.tool("github.issues.list", {"q": SECRET}, lambda args: [SECRET])
        rec.tool("slack.post", {"text": SECRET}, lambda args: SECRET)
        rec.result(SECRET)
    assert rec.execution_id is not None
    execution = spans.one("agentstore.executions.recording")
    assert execution.parent is None
    assert execution.attributes == {"agentstore.execution_id": str(rec.execution_id)}
    assert execution.status.status_code is StatusCode.UNSET

    stored = store.executions.list_tool_calls("scope", rec.execution_id)
    tools = [s for s in spans.children_of(execution) if s.name.startswith("execute_tool ")]
    assert [t.name for t in tools] == ["execute_tool github.issues.list", "execute_tool slack.post"]
    for tool, call in zip(tools, stored, strict=True):
        assert tool.attributes == {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.tool_path,
            "gen_ai.tool.call.id": str(call.id),
        }
        assert spans.children_of(tool) == []  # the recorder saves later, not in the call
    own_calls = [s.name for s in spans.children_of(execution) if s not in tools]
    assert own_calls == ["agentstore.executions.save"]  # one save, as the block ends
    trace_ids = {s.context.trace_id for s in [execution, *tools, *spans.children_of(tools[0])]}
    assert trace_ids == {execution.context.trace_id}
    assert not [
        v for s in spans.finished() for v in (s.attributes or {}).values() if SECRET in str(v)
    ]


def test_a_tool_that_raises_ends_its_span_in_error_and_the_execution_too(
    store: AgentStore, spans: Spans
) -> None:
    def broken(_: object) -> None:
        raise TimeoutError(SECRET)

    with pytest.raises(TimeoutError), store.executions.recording("scope", "code") as rec:
        rec.tool("slack.post", None, broken)
    tool = spans.one("execute_tool slack.post")
    execution = spans.one("agentstore.executions.recording")
    for span in (tool, execution):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is None
        assert span.attributes["error.type"] == "TimeoutError"
        assert span.events == ()
    assert rec.faults == 0


def test_an_execution_ended_by_its_own_account_is_an_error(store: AgentStore, spans: Spans) -> None:
    with store.executions.recording("scope", "code") as rec:
        rec.tool("a.tool", None, lambda args: None)
        rec.error(SECRET)
    execution = spans.one("agentstore.executions.recording")
    assert execution.status.status_code is StatusCode.ERROR
    assert execution.attributes["error.type"] == "_OTHER"
    assert spans.one("execute_tool a.tool").status.status_code is StatusCode.UNSET


def test_a_background_save_is_a_child_of_its_execution(store: AgentStore, spans: Spans) -> None:
    """Saved by the background thread (or the event loop's timer) while the block still
    runs: that save's span is the execution's child all the same."""
    with store.executions.recording("scope", "code", flush_after=timedelta(0)) as rec:
        rec.tool("a.tool", None, lambda args: None)
        assert rec.execution_id is not None
        execution_id = rec.execution_id
        # Wait for the save's span as well as its rows: the rows are visible once the
        # commit returns, a moment before the span around it ends. (Each listing also
        # gives the async face's event loop, and so its timer, a turn.)
        during = wait_until(
            lambda: (
                store.executions.list_tool_calls("scope", execution_id)
                and spans.named("agentstore.executions.save")
            )
        )
    execution = spans.one("agentstore.executions.recording")
    assert during and all(spans.parent_of(save) == execution for save in during)
