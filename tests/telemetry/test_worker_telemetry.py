"""The worker's telemetry, on both faces and both dialects: a root span per worked task,
parent of its handler's spans and of the calls that end its attempt; its outcome on the
span; the counters and the claim's duration as metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from agentstore import AgentStore, Backoff, RunRecord, TaskDraft
from agentstore.worker import TaskContext
from tests.telemetry.conftest import Metrics, Spans
from tests.worker.conftest import WorkerOnFace

NO_WAIT = Backoff(first=timedelta(0), cap=timedelta(0))
TASK = "agentstore.worker.task"


@pytest.fixture
def run(sync_store: AgentStore) -> RunRecord:
    return sync_store.runs.create("worked", "/repo", "running")


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
def test_a_worked_task_is_a_root_span_over_its_handler_and_its_calls(
    workers: WorkerOnFace,
    sync_store: AgentStore,
    run: RunRecord,
    spans: Spans,
    handler_kind: str,
) -> None:
    planned = sync_store.tasks.replace_pending(run.id, [TaskDraft("a", "o"), TaskDraft("b", "o")])
    tracer = trace.get_tracer("test")

    def sync_handler(context: TaskContext) -> str:
        with tracer.start_as_current_span("handler"):
            return "done"

    async def async_handler(context: TaskContext) -> str:
        with tracer.start_as_current_span("handler"):
            await asyncio.sleep(0)
            return "done"

    workers.run(sync_handler if handler_kind == "sync" else async_handler, run_id=run.id)
    worked = spans.named(TASK)
    assert sorted(s.attributes["agentstore.task_id"] for s in worked) == sorted(
        str(t.id) for t in planned
    )
    for span in worked:
        assert span.parent is None and span.kind is SpanKind.CONSUMER
        assert span.attributes["agentstore.run_id"] == str(run.id)
        assert span.attributes["agentstore.task.attempt"] == 1
        assert span.attributes["agentstore.task.outcome"] == "completed"
        assert span.status.status_code is StatusCode.UNSET
        children = spans.children_of(span)
        assert [c.name for c in children] == ["handler", "agentstore.tasks.complete_and_claim"]
        assert {c.context.trace_id for c in children} == {span.context.trace_id}
        [ending] = children[1:]
        assert ending.attributes["agentstore.task_id"] == span.attributes["agentstore.task_id"]
    # The claims that found the first task, and then nothing, are no task's.
    assert [spans.parent_of(s) for s in spans.named("agentstore.tasks.claim_next")] == [None] * 2


def test_a_failed_attempt_ends_its_span_in_error_and_is_counted(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, spans: Spans, recorded: Metrics
) -> None:
    sync_store.tasks.replace_pending(run.id, [TaskDraft("a", "o")])

    def handler(context: TaskContext) -> str:
        if context.task.attempt == 1:
            raise ValueError("the first time")
        return "done"

    counters = workers.run(handler, run_id=run.id, backoff=NO_WAIT)
    first, second = sorted(spans.named(TASK), key=lambda s: s.attributes["agentstore.task.attempt"])
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["error.type"] == "ValueError"
    assert first.attributes["agentstore.task.outcome"] == "retried"
    assert "agentstore.tasks.fail" in [c.name for c in spans.children_of(first)]
    assert second.status.status_code is StatusCode.UNSET
    assert second.attributes["agentstore.task.outcome"] == "completed"
    assert (counters.claimed, counters.failed, counters.retried, counters.completed) == (2, 1, 1, 1)
    assert recorded.total("agentstore.tasks.claimed") == 2
    assert recorded.total("agentstore.tasks.failed") == 1
    assert recorded.total("agentstore.tasks.retried") == 1
    assert recorded.total("agentstore.tasks.completed") == 1
    assert recorded.total("agentstore.tasks.lease_lost") == 0


def test_a_lost_lease_is_counted_and_ends_its_span_in_error(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, spans: Spans, recorded: Metrics
) -> None:
    sync_store.tasks.replace_pending(run.id, [TaskDraft("a", "o")])

    def handler(context: TaskContext) -> str:
        if context.task.attempt == 1:  # the claim is taken away while the handler works
            sync_store.tasks.requeue_in_progress(run.id)
        return "done"

    counters = workers.run(handler, run_id=run.id)
    assert (counters.lost_leases, counters.completed) == (1, 1)
    lost = next(s for s in spans.named(TASK) if s.attributes["agentstore.task.attempt"] == 1)
    assert lost.attributes["agentstore.task.outcome"] == "lease_lost"
    assert lost.status.status_code is StatusCode.ERROR
    assert lost.attributes["error.type"] == "lease_lost"
    assert recorded.total("agentstore.tasks.lease_lost") == 1
    assert recorded.total("agentstore.tasks.completed") == 1


def test_each_claim_is_timed_by_the_operation_that_made_it(
    workers: WorkerOnFace, sync_store: AgentStore, run: RunRecord, recorded: Metrics
) -> None:
    sync_store.tasks.replace_pending(run.id, [TaskDraft(str(n), "o") for n in range(3)])
    workers.run(lambda context: "done", run_id=run.id)
    durations = recorded.read()["agentstore.tasks.claim.duration"]
    counts: dict[Any, int] = {}
    for attributes, count in durations:
        operation = attributes["agentstore.operation"]
        counts[operation] = counts.get(operation, 0) + count
    # The first claim and the last (finding nothing); each completion claimed the next.
    assert counts == {"claim_next": 2, "complete_and_claim": 3}


def test_a_worker_on_a_store_without_telemetry_emits_nothing(
    db_url: str, run: RunRecord, sync_store: AgentStore, spans: Spans, recorded: Metrics
) -> None:
    from agentstore.worker import Worker

    sync_store.tasks.replace_pending(run.id, [TaskDraft("a", "o")])
    spans.exporter.clear()  # the planning store's span
    with AgentStore.open(db_url, telemetry=False) as store:
        counters = Worker(store, lambda context: "done", run_id=run.id).run(until_idle=True)
    assert counters.completed == 1
    assert spans.finished() == []
    assert recorded.total("agentstore.tasks.completed") == 0
