"""Only ``agentstore.errors`` leave a public call, in every face: ids are a UUID or its
canonical string on both databases, anything else (and any argument of the wrong type) is
a ``ValidationError``; a database without the schema is ``NotMigratedError``; an outage
is ``StoreUnavailableError`` saying whether a retry may help."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import agentstore
import agentstore.faces
from agentstore import (
    AgentStore,
    AsyncAgentStore,
    Completion,
    ExecutionQuery,
    NewEvent,
    NewToolCall,
    TaskDraft,
)
from agentstore.errors import (
    AgentStoreError,
    NotMigratedError,
    StoreUnavailableError,
    UnsupportedDatabaseError,
    ValidationError,
)
from tests.orchestrator.test_tasks import refused
from tests.support.postgres import kill_connections

LEASE = timedelta(minutes=5)
PAST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class World:
    """One of everything, for calls that need an id."""

    run: uuid.UUID
    task: uuid.UUID
    execution: uuid.UUID
    tool_call: uuid.UUID
    interaction: uuid.UUID


def build(store: AgentStore) -> World:
    run = store.runs.create("ids", "/r")
    tasks = store.tasks.replace_pending(run.id, [TaskDraft("a", "o"), TaskDraft("b", "o")])
    store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    store.agents.save(run.id, "strategy", turns=1)
    store.events.add(run.id, "s", "k", "m")
    store.attempts.add(run.id, tasks[0].id, 1, "failed", "once")
    store.checkpoints.add(run.id, "running", {"n": 1})
    store.artifacts.add(run.id, "diff", "/p", role="coder")
    store.approvals.add(run.id, "checker", "approved", "ok")
    execution = store.executions.create("s", "code")
    call = store.executions.record_tool_call("s", execution.id, "fs.list")
    question = store.executions.request_interaction("s", execution.id, "form")
    return World(run.id, tasks[0].id, execution.id, call.id, question.id)


def valid_calls(w: World) -> dict[str, dict[str, Any]]:
    """A valid call of every method of every face, by keyword."""
    return {
        "runs.create": {"goal": "g", "repo_path": "/r", "status": "running"},
        "runs.get": {"run_id": w.run},
        "runs.list": {"status": "running", "limit": 5, "cursor": None},
        "runs.update": {
            "run_id": w.run,
            "status": "running",
            "summary": "s",
            "current_task_id": w.task,
        },
        "runs.increment_cycle": {"run_id": w.run},
        "runs.increment_replan": {"run_id": w.run},
        "runs.delete": {"run_id": uuid.uuid4()},
        "runs.sweepable": {"older_than": PAST, "statuses": ["completed"]},
        "runs.sweep": {"older_than": PAST, "statuses": ["failed"], "batch_size": 10},
        "runs.snapshot": {"run_id": w.run},
        "runs.pause": {"run_id": uuid.uuid4()},
        "runs.reopen": {"run_id": uuid.uuid4(), "status": "planning"},
        "agents.add_turns": {"run_id": w.run, "role": "builder", "turns": 2},
        "runs.resume": {"run_id": uuid.uuid4()},
        "agents.get": {"run_id": w.run, "role": "strategy"},
        "agents.list": {"run_id": w.run},
        "agents.save": {
            "run_id": w.run,
            "role": "strategy",
            "session_id": "abc",
            "turns": 2,
            "rotation_count": 0,
            "last_prompt_path": "/p",
            "last_response_path": "/r",
        },
        "tasks.get": {"task_id": w.task},
        "tasks.held_by": {"worker": "w", "run_id": w.run},
        "tasks.list": {"run_id": w.run, "statuses": ["pending"], "limit": 5},
        "tasks.replace_pending": {"run_id": uuid.uuid4(), "drafts": [TaskDraft("t", "o")]},
        "tasks.claim_next": {"worker": "w", "run_id": uuid.uuid4(), "lease": LEASE, "limit": 1},
        "tasks.heartbeat": {"task_id": w.task, "attempt": 1, "lease": LEASE},
        "tasks.complete": {"task_id": uuid.uuid4(), "summary": "s", "attempt": 1},
        "tasks.block": {
            "task_id": uuid.uuid4(),
            "summary": "s",
            "blocker_signature": "b",
            "attempt": 1,
        },
        "tasks.abandon": {
            "task_id": uuid.uuid4(),
            "summary": "s",
            "blocker_signature": "b",
            "attempt": 1,
        },
        "tasks.force_abandon": {"task_id": uuid.uuid4(), "reason": "r"},
        "tasks.requeue_in_progress": {"run_id": uuid.uuid4()},
        "tasks.requeue_expired": {},
        "tasks.fail": {
            "task_id": uuid.uuid4(),
            "error": "e",
            "attempt": 1,
            "retry_in": timedelta(seconds=1),
        },
        "tasks.release": {"task_id": uuid.uuid4(), "reason": "r", "attempt": 1},
        "tasks.cancel": {"task_id": uuid.uuid4(), "reason": "r"},
        "tasks.next_due": {"run_id": w.run},
        "tasks.counts": {"run_ids": [w.run]},
        "tasks.wait": {"task_id": w.task, "question": {"q": 1}, "attempt": 1},
        "tasks.answer": {"task_id": w.task, "answer": {"a": 1}, "attempt": 1},
        "tasks.complete_and_claim": {
            "task_id": uuid.uuid4(),
            "summary": "s",
            "attempt": 1,
            "worker": "w",
            "run_id": w.run,
            "lease": LEASE,
            "limit": 1,
            "result": None,
        },
        "tasks.complete_many": {
            "completions": [Completion(w.task, "s", 1, {"r": 1})],
            "worker": "w",
            "run_id": w.run,
            "lease": LEASE,
            "limit": 1,
        },
        "attempts.add": {
            "run_id": w.run,
            "task_id": w.task,
            "attempt": 7,
            "status": "failed",
            "summary": "s",
            "result": {"r": 1},
            "blocker_signature": None,
        },
        "attempts.latest": {"task_id": w.task},
        "attempts.recent": {"run_id": w.run, "limit": 3},
        "events.add": {"run_id": w.run, "source": "s", "kind": "k", "message": "m", "payload": [1]},
        "events.add_many": {"events": [NewEvent(w.run, "s", "k", "m")]},
        "events.list": {"run_id": w.run, "limit": 3},
        "events.tail": {"run_id": w.run, "after_id": 0, "limit": 3},
        "events.prunable": {"run_id": w.run, "keep_latest": 100},
        "events.prune": {"run_id": None, "keep_latest": 100, "older_than": PAST, "batch_size": 10},
        "artifacts.add": {"run_id": w.run, "kind": "k", "path": "/p", "role": "r", "metadata": {}},
        "artifacts.list": {"run_id": w.run, "role": "coder", "limit": 3},
        "approvals.add": {
            "run_id": w.run,
            "source": "s",
            "verdict": "approved",
            "rationale": "r",
            "payload": None,
        },
        "approvals.list": {"run_id": w.run, "limit": 3},
        "approvals.latest": {"run_id": w.run, "source": "checker"},
        "checkpoints.add": {"run_id": w.run, "status": "running", "payload": {"n": 2}},
        "checkpoints.latest": {"run_id": w.run},
        "checkpoints.list": {"run_id": w.run, "limit": 3},
        "checkpoints.prunable": {"run_id": None, "older_than": PAST},
        "checkpoints.prune": {"run_id": w.run, "keep_latest": 100, "batch_size": 10},
        "executions.create": {
            "scope_id": "s",
            "code": "c",
            "id": None,
            "status": "running",
            "trigger": ("mcp", {"a": 1}),
            "started_at": None,
        },
        "executions.get": {"scope_id": "s", "id": w.execution, "include_private": False},
        "executions.finish": {
            "scope_id": "s",
            "id": uuid.uuid4(),
            "status": "completed",
            "result": 1,
            "error_text": None,
            "logs": ["l"],
            "completed_at": None,
        },
        "executions.update": {
            "scope_id": "s",
            "id": w.execution,
            "status": "running",
            "result": 2,
            "error_text": "e",
            "logs": ["l"],
            "completed_at": None,
        },
        "executions.list": {"scope_id": "s", "query": ExecutionQuery(limit=5)},
        "executions.meta": {"scope_id": "s", "query": ExecutionQuery()},
        "executions.sweepable": {"older_than": PAST, "scope_id": "s"},
        "executions.sweep": {"older_than": PAST, "scope_id": "s", "batch_size": 10},
        "executions.record_tool_call": {
            "scope_id": "s",
            "execution_id": w.execution,
            "tool_path": "a.b",
            "args": {"x": 1},
            "namespace": None,
            "started_at": None,
        },
        "executions.record_tool_calls": {
            "scope_id": "s",
            "execution_id": w.execution,
            "calls": [NewToolCall("a.b")],
        },
        "executions.finish_tool_call": {
            "scope_id": "s",
            "id": uuid.uuid4(),
            "status": "completed",
            "result": None,
            "error_text": None,
            "completed_at": None,
        },
        "executions.list_tool_calls": {"scope_id": "s", "execution_id": w.execution},
        "executions.request_interaction": {
            "scope_id": "s",
            "execution_id": uuid.uuid4(),
            "kind": "form",
            "purpose": None,
            "payload": None,
            "expires_in": LEASE,
            "on_expiry": "fail",
        },
        "executions.resolve_interaction": {
            "scope_id": "s",
            "id": uuid.uuid4(),
            "response": 1,
            "response_private": 2,
            "cancelled": False,
        },
        "executions.list_interactions": {
            "scope_id": "s",
            "execution_id": w.execution,
            "include_private": True,
        },
        "executions.list_waiting": {"scope_id": "s", "limit": 5, "include_private": False},
        "executions.expire_interactions": {"scope_id": "s", "batch_size": 10},
        "executions.inbox": {"scope_id": "s", "limit": 5, "after": None},
        "executions.scopes": {"limit": 5, "after": None},
        "executions.recording": None,  # a context manager that never raises into its block
    }


def face_methods() -> set[str]:
    names = set()
    for face in agentstore.faces.Faces.NAMES:
        cls = getattr(agentstore.faces, face.capitalize())
        names |= {f"{face}.{name}" for name in dir(cls) if not name.startswith("_")}
    return names


def test_the_table_has_every_method_of_every_face() -> None:
    world = World(*(uuid.uuid4() for _ in range(5)))
    assert set(valid_calls(world)) == face_methods()


WRONG = [
    object(),
    3.5,
    -1,
    2**63,
    "",
    "\x00",
    "x" * 70_000,
    b"bytes",
    [object()],
    {"k": object()},
    float("nan"),
    True,
    datetime(2026, 1, 1),  # naive
    "not-a-uuid",
    uuid.uuid4().hex,  # 32 digits: not the canonical form
]


def test_no_wrong_argument_gets_anything_but_an_agentstore_error(store: AgentStore) -> None:
    """Each argument of each call, replaced in turn by values of the wrong type, size or
    form: the call succeeds or raises an ``AgentStoreError``, never a raw one."""
    world = build(store)
    escaped = []
    for name, kwargs in valid_calls(world).items():
        if kwargs is None:
            continue
        face, method = name.split(".")
        call = getattr(getattr(store, face), method)
        variants = [("-", None, kwargs)] + [
            (parameter, wrong, {**kwargs, parameter: wrong})
            for parameter in kwargs
            for wrong in WRONG
        ]
        for parameter, wrong, arguments in variants:
            try:
                call(**arguments)
            except AgentStoreError:
                pass  # refused (or not found, or stale): typed either way
            except Exception as exc:
                escaped.append(f"{name}({parameter}={wrong!r:.30}): {exc!r:.120}")
    assert escaped == []


def id_forms(value: uuid.UUID) -> list[Any]:
    return [value, str(value), str(value).upper()]


ID_READS: dict[str, Callable[[AgentStore, World, Any], Any]] = {
    "runs.get": lambda s, w, f: s.runs.get(f(w.run)),
    "runs.snapshot": lambda s, w, f: s.runs.snapshot(f(w.run)),
    "agents.list": lambda s, w, f: s.agents.list(f(w.run)),
    "tasks.get": lambda s, w, f: s.tasks.get(f(w.task)),
    "tasks.list": lambda s, w, f: s.tasks.list(f(w.run)),
    "attempts.latest": lambda s, w, f: s.attempts.latest(f(w.task)),
    "events.tail": lambda s, w, f: s.events.tail(f(w.run)),
    "artifacts.list": lambda s, w, f: s.artifacts.list(f(w.run)),
    "approvals.latest": lambda s, w, f: s.approvals.latest(f(w.run), "checker"),
    "checkpoints.latest": lambda s, w, f: s.checkpoints.latest(f(w.run)),
    "executions.get": lambda s, w, f: s.executions.get("s", f(w.execution)),
    "executions.list_tool_calls": lambda s, w, f: s.executions.list_tool_calls("s", f(w.execution)),
    "executions.list_interactions": lambda s, w, f: s.executions.list_interactions(
        "s", f(w.execution)
    ),
}


@pytest.mark.parametrize("read", list(ID_READS))
def test_string_and_uuid_ids_read_the_same(store: AgentStore, read: str) -> None:
    world = build(store)
    results = [
        ID_READS[read](store, world, form) for form in (lambda v: v, str, lambda v: str(v).upper())
    ]
    assert results[0] == results[1] == results[2]
    assert results[0] not in (None, [])


def test_string_ids_write_as_uuid_ids_do(store: AgentStore) -> None:
    world = build(store)
    run = str(world.run)
    task = str(world.task)
    assert store.tasks.heartbeat(task, 1, LEASE).id == world.task
    assert store.tasks.complete(task.upper(), "done", attempt=1).status == "completed"
    assert store.events.add(run, "s", "k", "string id").run_id == world.run
    assert store.runs.update(run, current_task_id=task).current_task_id == world.task
    call = store.executions.finish_tool_call("s", str(world.tool_call), "completed")
    assert call.id == world.tool_call
    answer = store.executions.resolve_interaction("s", str(world.interaction), {"ok": 1})
    assert answer.status == "resolved"


@pytest.mark.parametrize(
    "malformed",
    ["not-a-uuid", "", 42, None, b"\x00" * 16, "{" + str(uuid.UUID(int=1)) + "}"],
    ids=repr,
)
def test_a_malformed_id_is_a_validation_error_and_changes_nothing(
    store: AgentStore, malformed: Any
) -> None:
    world = build(store)
    for call in (
        lambda: store.runs.get(malformed),
        lambda: store.tasks.complete(malformed, "s", attempt=1),
        lambda: store.events.add(malformed, "s", "k", "m"),
        lambda: store.executions.get("s", malformed),
        lambda: store.executions.finish_tool_call("s", malformed, "completed"),
        lambda: store.runs.update(world.run, current_task_id=malformed or "x"),
    ):
        refused(store, ValidationError, call)


def test_an_unmigrated_database_is_its_own_error_naming_the_fix(empty_db_url: str) -> None:
    with AgentStore.open(empty_db_url) as store, pytest.raises(NotMigratedError) as error:
        store.runs.create("g", "/r")
    assert "agentstore db upgrade" in str(error.value)

    async def main() -> None:
        async with AsyncAgentStore.open(empty_db_url) as store:
            with pytest.raises(NotMigratedError, match="agentstore db upgrade"):
                await store.runs.list()

    asyncio.run(main())


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_lost_connection_is_retryable_in_both_faces(db_url: str) -> None:
    with AgentStore.open(db_url) as store:
        run = store.runs.create("g", "/r")
        kill_connections(db_url)
        with pytest.raises(StoreUnavailableError) as lost:
            store.runs.get(run.id)
        assert lost.value.retryable
        assert store.runs.get(run.id) == run  # the retry succeeds

    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            await store.runs.get(run.id)
            kill_connections(db_url)
            with pytest.raises(StoreUnavailableError) as lost:
                await store.runs.get(run.id)
            assert lost.value.retryable
            assert await store.runs.get(run.id) == run

    asyncio.run(main())


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_refused_login_is_not_retryable(db_url: str) -> None:
    import sqlalchemy as sa

    wrong = sa.make_url(db_url).set(database="no_such_database_here")
    with AgentStore.open(wrong) as store, pytest.raises(StoreUnavailableError) as refused_login:
        store.runs.list()
    assert not refused_login.value.retryable


def test_an_unreachable_sqlite_file_is_unavailable_not_retryable() -> None:
    with (
        AgentStore.open("sqlite:////nonexistent-dir/agentstore.db") as store,
        pytest.raises(StoreUnavailableError) as unreachable,
    ):
        store.runs.list()
    assert not unreachable.value.retryable


def test_migrating_an_unreachable_database_is_unavailable() -> None:
    with pytest.raises(StoreUnavailableError):
        agentstore.migrate("sqlite:////nonexistent-dir/agentstore.db")


def test_migrating_a_database_from_a_newer_release_is_refused(db_url: str) -> None:
    engine = agentstore.create_engine(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE agentstore_alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(UnsupportedDatabaseError, match="newer"):
        agentstore.migrate(db_url)

    async def main() -> None:
        async with AsyncAgentStore.open(db_url) as store:
            with pytest.raises(UnsupportedDatabaseError, match="newer"):
                await store.migrate()

    asyncio.run(main())
