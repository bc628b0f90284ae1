"""The recorder's save repeats safely: the same save made again (its reply lost) changes
nothing and raises nothing, and an execution ended otherwise is reported, not rewritten.
The operations run as the sync face runs them (the recorder's own path is covered, both
faces, by the recorder's tests)."""

from __future__ import annotations

import uuid

import pytest

from agentstore import AgentStore, ExecutionStatus
from agentstore.errors import InvalidTransitionError
from agentstore.executions.progress import CallState, Ending, RecordingProgress
from agentstore.models.base import utcnow
from agentstore.statuses import ToolCallStatus
from agentstore.types import uuid7


def columns(execution_id: uuid.UUID) -> dict[str, object]:
    return {
        "id": execution_id,
        "scope_id": "s",
        "code": "code",
        "status": "running",
        "trigger_kind": None,
        "trigger_meta": None,
        "started_at": utcnow(),
    }


def save(store: AgentStore, operation: object, execution_id: uuid.UUID, **kwargs: object) -> None:
    store._calls.write(RecordingProgress, operation, "s", execution_id, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("with_calls", [False, True], ids=["alone", "with-calls"])
def test_a_finished_save_made_again_changes_nothing(
    sync_store: AgentStore, with_calls: bool
) -> None:
    execution_id = uuid7()
    created = columns(execution_id)
    ending = Ending.of(ExecutionStatus.COMPLETED, None, None, ["done"], created["started_at"])  # type: ignore[arg-type]
    call = CallState.started(uuid7(), "t.x", {"a": 1}).ended(ToolCallStatus.COMPLETED)
    calls = [call] if with_calls else []
    for _ in range(2):  # the second: a retry after a lost reply
        if with_calls:
            save(
                sync_store,
                RecordingProgress.save,
                execution_id,
                create=created,
                calls=calls,
                ending=ending,
            )
        else:
            save(
                sync_store,
                RecordingProgress.save_ended,
                execution_id,
                create=created,
                ending=ending,
            )
    execution = sync_store.executions.get("s", execution_id).execution
    assert (execution.status, execution.logs, execution.tool_call_count) == (
        ExecutionStatus.COMPLETED,
        ["done"],
        len(calls),
    )
    assert [c.status for c in sync_store.executions.list_tool_calls("s", execution_id)] == [
        c.status for c in calls
    ]


def test_a_save_never_sets_an_ended_call_running_again(sync_store: AgentStore) -> None:
    execution_id = uuid7()
    running = CallState.started(uuid7(), "t.x", None)
    ended = running.ended(ToolCallStatus.FAILED, error_text="boom")
    save(
        sync_store,
        RecordingProgress.save,
        execution_id,
        create=columns(execution_id),
        calls=[ended],
        ending=None,
    )
    # An older save arriving late (the running state) is no step back.
    save(
        sync_store, RecordingProgress.save, execution_id, create=None, calls=[running], ending=None
    )
    [stored] = sync_store.executions.list_tool_calls("s", execution_id)
    assert (stored.status, stored.error_text) == ("failed", "boom")
    assert sync_store.executions.get("s", execution_id).execution.tool_call_count == 1


def test_an_execution_ended_otherwise_is_reported_not_rewritten(sync_store: AgentStore) -> None:
    execution = sync_store.executions.create("s", "code", id=uuid7())
    sync_store.executions.finish("s", execution.id, "cancelled")
    ending = Ending.of(ExecutionStatus.COMPLETED, 1, None, [], execution.started_at)
    for operation, extra in (
        (RecordingProgress.save_ended, {}),
        (RecordingProgress.save, {"calls": []}),
    ):
        with pytest.raises(InvalidTransitionError, match="cancelled"):
            save(
                sync_store,
                operation,
                execution.id,
                create=columns(execution.id),
                ending=ending,
                **extra,
            )
    assert sync_store.executions.get("s", execution.id).execution.status == "cancelled"
