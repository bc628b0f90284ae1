"""A span per public call, on both faces and both dialects: named for the aggregate and
the operation, carrying the database system and the ids the call's arguments name, never
a payload; a call that raises ends in error with its type, never its message."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from agentstore import AgentStore, AsyncAgentStore, NewEvent, TaskDraft
from agentstore.errors import NotFoundError, ValidationError
from agentstore.faces import Faces
from agentstore.operations import Repository
from tests.telemetry.conftest import Spans

SECRET = "s3cr3t-payload"


def attribute_values(spans: Spans) -> list[str]:
    """Every attribute value, status description and event of every span, as text."""
    texts = []
    for span in spans.finished():
        texts += [str(value) for value in (span.attributes or {}).values()]
        texts.append(str(span.status.description))
        texts += [f"{event.name} {dict(event.attributes or {})}" for event in span.events]
    return texts


def test_a_call_is_a_span_named_for_its_aggregate_and_operation(
    store: AgentStore, spans: Spans, dialect: str
) -> None:
    run = store.runs.create("goal", "/repo")
    store.events.add(run.id, "s", "note", "hello")
    created = spans.one("agentstore.runs.create")
    assert created.attributes == {"db.system.name": dialect}
    assert created.status.status_code is StatusCode.UNSET
    added = spans.one("agentstore.events.add")
    assert added.attributes == {"db.system.name": dialect, "agentstore.run_id": str(run.id)}


def test_a_span_carries_the_run_task_and_execution_ids_its_arguments_name(
    store: AgentStore, spans: Spans
) -> None:
    run = store.runs.create("goal", "/repo", "running")
    [task] = store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
    store.tasks.claim_next("w", run_id=run.id)  # a keyword argument
    store.tasks.complete(task.id, "done", attempt=1)  # a positional one
    execution = store.executions.create("scope", "code")
    store.executions.record_tool_call("scope", execution.id, "a.tool")
    assert spans.one("agentstore.tasks.claim_next").attributes["agentstore.run_id"] == str(run.id)
    completed = spans.one("agentstore.tasks.complete").attributes
    assert completed["agentstore.task_id"] == str(task.id)
    assert "agentstore.run_id" not in completed
    recorded = spans.one("agentstore.executions.record_tool_call").attributes
    assert recorded["agentstore.execution_id"] == str(execution.id)


def test_an_id_given_as_text_is_carried_as_its_canonical_form(
    store: AgentStore, spans: Spans
) -> None:
    run = store.runs.create("goal", "/repo")
    store.runs.get(str(run.id))
    assert spans.one("agentstore.runs.get").attributes["agentstore.run_id"] == str(run.id)


def test_no_payload_result_or_message_is_ever_an_attribute(store: AgentStore, spans: Spans) -> None:
    run = store.runs.create(SECRET, f"/{SECRET}")
    [task] = store.tasks.replace_pending(run.id, [TaskDraft(SECRET, SECRET)])
    store.events.add_many([NewEvent(run.id, "s", "note", SECRET, {"k": SECRET})])
    store.tasks.claim_next("w", run_id=run.id)
    store.tasks.complete(task.id, SECRET, attempt=1, result={"k": SECRET})
    execution = store.executions.create("scope", SECRET)
    store.executions.record_tool_call("scope", execution.id, "tool", args={"k": SECRET})
    store.runs.snapshot(run.id)
    with pytest.raises(ValidationError, match=SECRET):  # its message quotes the value
        store.runs.create("goal", "/repo", status=SECRET)
    with pytest.raises(ValidationError):
        store.runs.get(SECRET)  # not an id: not carried either
    assert len(spans.finished()) == 10
    assert not [text for text in attribute_values(spans) if SECRET in text]


def test_a_call_that_raises_ends_its_span_in_error_with_the_type_only(
    store: AgentStore, spans: Spans
) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError):
        store.runs.get(missing)
    failed = spans.one("agentstore.runs.get")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None
    assert failed.attributes["error.type"] == "agentstore.errors.NotFoundError"
    assert failed.attributes["agentstore.run_id"] == str(missing)
    assert failed.events == ()  # no exception event: its message and stack may quote data


def test_calls_in_a_unit_are_spans_too(store: AgentStore, spans: Spans) -> None:
    run = store.runs.create("goal", "/repo")
    with store.transaction() as tx:
        tx.events.add(run.id, "s", "note", "in a unit")
        with pytest.raises(NotFoundError):
            tx.runs.get(uuid.uuid4())
    assert spans.one("agentstore.events.add").status.status_code is StatusCode.UNSET
    assert spans.one("agentstore.runs.get").attributes["error.type"] == (
        "agentstore.errors.NotFoundError"
    )


def test_a_call_is_a_child_of_the_callers_span_on_the_sync_face(db_url: str, spans: Spans) -> None:
    tracer = trace.get_tracer("test")
    with AgentStore.open(db_url) as store, tracer.start_as_current_span("caller"):
        store.runs.create("goal", "/repo")
        with store.transaction() as tx:
            tx.runs.create("goal", "/repo")
    caller = spans.one("caller")
    assert [spans.parent_of(s) for s in spans.named("agentstore.runs.create")] == [caller] * 2


def test_a_call_is_a_child_of_the_callers_span_on_the_asyncio_face(
    db_url: str, spans: Spans
) -> None:
    """The call runs in a greenlet (SQLAlchemy's bridge): it sees the task's context."""
    tracer = trace.get_tracer("test")

    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            with tracer.start_as_current_span("caller"):
                await store.runs.create("goal", "/repo")
                async with store.transaction() as tx:
                    await tx.runs.create("goal", "/repo")
                await asyncio.gather(*(store.runs.list() for _ in range(3)))

    asyncio.run(main())
    caller = spans.one("caller")
    made = spans.named("agentstore.runs.create") + spans.named("agentstore.runs.list")
    assert [spans.parent_of(s) for s in made] == [caller] * 5


def test_a_store_opened_without_telemetry_emits_nothing(db_url: str, spans: Spans) -> None:
    with AgentStore.open(db_url, telemetry=False) as store:
        run = store.runs.create("goal", "/repo")
        with store.transaction() as tx:
            tx.runs.get(run.id)
        with store.executions.recording("scope", "code") as rec:
            rec.tool("a.tool", None, lambda args: None)
    assert spans.finished() == []


def test_telemetry_takes_true_or_false(db_url: str) -> None:
    with pytest.raises(ValidationError, match="telemetry"):
        AgentStore.open(db_url, telemetry="no")  # type: ignore[arg-type]


def test_every_repository_names_an_aggregate_of_the_store() -> None:
    import agentstore.orchestrator.pending  # noqa: F401  (not reached through a face)

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    repositories = subclasses(Repository)
    assert len(repositories) >= 11
    assert {r.aggregate for r in repositories} <= set(Faces.NAMES)
