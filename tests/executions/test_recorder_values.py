"""Nothing the recorder opens is stranded: a result, argument or payload that is not JSON
is stored as a faithful text form (and counted as a fault), so the execution and its tool
calls still end in a terminal status. A recorder is refused inside a unit, whose rollback
would erase the record."""

from __future__ import annotations

import pytest

from agentstore import AgentStore, ExecutionStatus
from agentstore.errors import ValidationError
from tests.support.postgres import kill_connections


class Widget:
    def __repr__(self) -> str:
        return "Widget(7)"


def test_values_that_are_not_json_are_stored_as_text(store: AgentStore) -> None:
    with store.executions.recording("s", "code") as rec:
        value = rec.tool("make.widget", {"at": {1, 2}}, lambda args: Widget())
        asked = rec.ask("form", payload={"widget": Widget()})
        rec.result({"widget": value, "n": float("nan")})
    assert rec.execution_id is not None and asked is not None
    execution = store.executions.get("s", rec.execution_id).execution
    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.result == {
        "not_json": "{'widget': Widget(7), 'n': nan}",
        "type": "builtins.dict",
    }
    [call] = store.executions.list_tool_calls("s", rec.execution_id)
    assert call.status == "completed"
    assert call.args == {"not_json": "{'at': {1, 2}}", "type": "builtins.dict"}
    assert call.result == {"not_json": "Widget(7)", "type": f"{__name__}.Widget"}
    assert asked.payload == {"not_json": "{'widget': Widget(7)}", "type": "builtins.dict"}
    assert rec.faults == 4
    assert all("not JSON" in message for message in rec.fault_messages)


def test_a_recorder_is_refused_inside_a_unit(store: AgentStore) -> None:
    with (
        store.transaction() as tx,
        pytest.raises(ValidationError, match=r"store\.executions\.recording"),
        tx.executions.recording("s", "code") as rec,
    ):
        rec.log("never reached")
    assert store.executions.list("s").items == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_lost_connection_strands_nothing(sync_store: AgentStore, db_url: str) -> None:
    """The recorder names what it writes, so it may try again a call the database did
    not answer: the execution and its tool call still end, with no fault."""
    with sync_store.executions.recording("s", "code") as rec:
        kill_connections(db_url)  # the tool call's record meets a dead connection
        value = rec.tool("t.x", {}, lambda _: 1)
        kill_connections(db_url)  # and so does the execution's finish
        rec.result(value)
    assert rec.faults == 0 and rec.execution_id is not None
    execution = sync_store.executions.get("s", rec.execution_id).execution
    assert (execution.status, execution.result, execution.tool_call_count) == (
        ExecutionStatus.COMPLETED,
        1,
        1,
    )
    [call] = sync_store.executions.list_tool_calls("s", rec.execution_id)
    assert call.status == "completed"
