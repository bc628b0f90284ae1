"""The reference's cases, translated: create/get, update/finish, tool calls with
duration, the interaction lifecycle, every status; and the error paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agentstore import AgentStore, ExecutionStatus, NewToolCall
from agentstore.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from tests.orchestrator.test_tasks import refused

SCOPE = "tenant-1"


def test_create_and_get_round_trip(store: AgentStore) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = store.executions.create(
        SCOPE, "return 2+2", trigger=("mcp", {"session": "abc"}), started_at=started
    )
    view = store.executions.get(SCOPE, created.id)
    assert view.execution == created
    assert view.pending_interaction is None
    assert (created.status, created.trigger_kind, created.trigger_meta) == (
        ExecutionStatus.RUNNING,
        "mcp",
        {"session": "abc"},
    )
    assert (created.started_at, created.tool_call_count, created.duration_ms) == (started, 0, None)


def test_a_caller_chosen_id_is_kept_and_duplicates_conflict(store: AgentStore) -> None:
    chosen = uuid.uuid4()
    assert store.executions.create(SCOPE, "x", id=chosen).id == chosen
    refused(store, ConflictError, lambda: store.executions.create(SCOPE, "y", id=chosen))
    assert store.executions.create("tenant-2", "z", id=chosen).id == chosen  # per scope


def test_finish_sets_completion_time_and_duration(store: AgentStore) -> None:
    started = datetime.now(UTC) - timedelta(seconds=2)
    execution = store.executions.create(SCOPE, "x", started_at=started)
    done = store.executions.finish(
        SCOPE,
        execution.id,
        "completed",
        result={"answer": 4},
        logs=["a", "b"],
        completed_at=started + timedelta(milliseconds=1500),
    )
    assert (done.status, done.result, done.logs, done.duration_ms) == (
        ExecutionStatus.COMPLETED,
        {"answer": 4},
        ["a", "b"],
        1500,
    )


def test_finish_is_only_from_a_status_that_has_not_ended(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.finish(SCOPE, execution.id, "failed", error_text="boom")
    refused(
        store,
        InvalidTransitionError,
        lambda: store.executions.finish(SCOPE, execution.id, "completed"),
    )
    refused(store, ValidationError, lambda: store.executions.finish(SCOPE, uuid.uuid4(), "running"))


def test_update_changes_the_fields_given(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x", status="pending")
    updated = store.executions.update(SCOPE, execution.id, status="running", logs=["started"])
    assert (updated.status, updated.logs, updated.result) == (
        ExecutionStatus.RUNNING,
        ["started"],
        None,
    )


@pytest.mark.parametrize("status", [s.value for s in ExecutionStatus])
def test_every_status_is_stored_and_listed(store: AgentStore, status: str) -> None:
    execution = store.executions.create(SCOPE, "x", status=status)
    assert store.executions.get(SCOPE, execution.id).execution.status == status
    assert [e.id for e in store.executions.list(SCOPE).items] == [execution.id]


def test_tool_calls_are_recorded_with_duration_and_counted(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    start = datetime.now(UTC)
    call = store.executions.record_tool_call(
        SCOPE, execution.id, "github.issues.list", args={"repo": "a/b"}, started_at=start
    )
    assert (call.status, call.namespace) == ("running", "github")
    failed = store.executions.record_tool_call(SCOPE, execution.id, "slack.post", namespace="chat")
    done = store.executions.finish_tool_call(
        SCOPE, call.id, "completed", result=[1, 2], completed_at=start + timedelta(milliseconds=250)
    )
    store.executions.finish_tool_call(SCOPE, failed.id, "failed", error_text="rate limited")
    assert (done.status, done.result, done.duration_ms) == ("completed", [1, 2], 250)
    calls = store.executions.list_tool_calls(SCOPE, execution.id)
    assert [(c.tool_path, c.namespace, c.status) for c in calls] == [
        ("github.issues.list", "github", "completed"),
        ("slack.post", "chat", "failed"),
    ]
    assert store.executions.get(SCOPE, execution.id).execution.tool_call_count == 2
    refused(
        store,
        InvalidTransitionError,
        lambda: store.executions.finish_tool_call(SCOPE, call.id, "failed"),
    )


def test_a_batch_of_tool_calls_is_recorded_in_order_and_counted(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    paths = [f"github.call{n}" for n in range(25)] + ["slack.post"]
    batch = [NewToolCall(path, args={"n": n}) for n, path in enumerate(paths)]
    ids = store.executions.record_tool_calls(SCOPE, execution.id, batch)
    listed = {c.id: c for c in store.executions.list_tool_calls(SCOPE, execution.id)}
    assert set(listed) == set(ids)
    recorded = [listed[id] for id in ids]  # the ids come back in the order given
    assert [(c.tool_path, c.args, c.status) for c in recorded] == [
        (path, {"n": n}, "running") for n, path in enumerate(paths)
    ]
    assert [c.namespace for c in recorded[-2:]] == ["github", "slack"]
    assert len({c.started_at for c in recorded}) == 1  # one batch, one moment
    assert store.executions.get(SCOPE, execution.id).execution.tool_call_count == 26
    assert store.executions.record_tool_calls(SCOPE, execution.id, []) == []


def test_a_bad_tool_call_refuses_the_whole_batch(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    good = NewToolCall("fs.read")
    for bad in (NewToolCall(""), NewToolCall("fs.write", args={"x": float("nan")})):
        refused(
            store,
            ValidationError,
            lambda bad=bad: store.executions.record_tool_calls(  # type: ignore[misc]
                SCOPE, execution.id, [good, bad]
            ),
        )
    refused(
        store,
        NotFoundError,
        lambda: store.executions.record_tool_calls("tenant-2", execution.id, [good]),
    )


def test_the_interaction_lifecycle(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    asked = store.executions.request_interaction(
        SCOPE, execution.id, "form", purpose="Need a token", payload={"field": "token"}
    )
    view = store.executions.get(SCOPE, execution.id)
    assert view.execution.status == ExecutionStatus.WAITING_FOR_INTERACTION
    assert view.pending_interaction is not None and view.pending_interaction.id == asked.id
    assert [w.execution.id for w in store.executions.list_waiting(SCOPE)] == [execution.id]

    answered = store.executions.resolve_interaction(
        SCOPE, asked.id, {"ok": True}, {"token": "s3cret"}
    )
    assert answered.status == "resolved" and answered.response_private is None
    view = store.executions.get(SCOPE, execution.id)
    assert view.execution.status == ExecutionStatus.RUNNING and view.pending_interaction is None
    assert store.executions.list_waiting(SCOPE) == []
    refused(
        store, InvalidTransitionError, lambda: store.executions.resolve_interaction(SCOPE, asked.id)
    )


def test_a_cancelled_interaction_resumes_the_execution(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    asked = store.executions.request_interaction(SCOPE, execution.id, "approval")
    assert (
        store.executions.resolve_interaction(SCOPE, asked.id, cancelled=True).status == "cancelled"
    )
    assert store.executions.get(SCOPE, execution.id).execution.status == ExecutionStatus.RUNNING


def test_the_private_response_is_returned_only_when_asked(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    first = store.executions.request_interaction(SCOPE, execution.id, "form")
    store.executions.request_interaction(SCOPE, execution.id, "form")
    store.executions.resolve_interaction(SCOPE, first.id, {"shown": 1}, {"secret": 2})
    public = store.executions.list_interactions(SCOPE, execution.id)
    private = store.executions.list_interactions(SCOPE, execution.id, include_private=True)
    assert [i.response_private for i in public] == [None, None]
    assert private[0].response_private == {"secret": 2}
    # the second question is still open, so the execution still waits
    assert store.executions.get(SCOPE, execution.id).execution.status == "waiting_for_interaction"


def test_a_paused_execution_survives_a_restart(store: AgentStore, db_url: str) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.request_interaction(SCOPE, execution.id, "form", purpose="token")
    store.close()
    with AgentStore.open(db_url) as restarted:
        waiting = restarted.executions.list_waiting(SCOPE)
    assert [w.execution.id for w in waiting] == [execution.id]
    assert waiting[0].pending_interaction is not None
    assert waiting[0].pending_interaction.purpose == "token"


def test_no_interaction_on_an_ended_execution(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.finish(SCOPE, execution.id, "completed")
    refused(
        store,
        InvalidTransitionError,
        lambda: store.executions.request_interaction(SCOPE, execution.id, "form"),
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.executions.create("", "x"),
        lambda s: s.executions.create(SCOPE, "x", status="sleeping"),
        lambda s: s.executions.create(SCOPE, "x", trigger=("mcp", ["not", "an", "object"])),
        lambda s: s.executions.create(SCOPE, "x", started_at=datetime(2026, 1, 1)),
        lambda s: s.executions.create("s" * 300, "x"),
    ],
)
def test_bad_input_is_refused_before_writing(store: AgentStore, call: object) -> None:
    refused(store, ValidationError, lambda: call(store))  # type: ignore[operator]


def test_unknown_ids_are_not_found(store: AgentStore) -> None:
    missing = uuid.uuid4()
    for call in (
        lambda: store.executions.get(SCOPE, missing),
        lambda: store.executions.finish(SCOPE, missing, "completed"),
        lambda: store.executions.record_tool_call(SCOPE, missing, "a.b"),
        lambda: store.executions.finish_tool_call(SCOPE, missing, "completed"),
        lambda: store.executions.request_interaction(SCOPE, missing, "form"),
        lambda: store.executions.resolve_interaction(SCOPE, missing),
    ):
        refused(store, NotFoundError, call)
