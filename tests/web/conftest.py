"""One seeded database per module and dialect (SQLite, PostgreSQL), and the API over it
through httpx's ASGI transport, on one event loop per module (the asyncio face's
connections belong to the loop that made them)."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from agentstore import AgentStore, AsyncAgentStore, TaskDraft
from agentstore.web import create_app
from tests.executions.conftest import seed
from tests.support.databases import DIALECTS

#: What an interaction's private response says: it must appear in no answer.
SECRET = "PRIVATE-RESPONSE-7f3a"
HOSTILE_SCOPE = "'; DROP TABLE executions; -- %_ Ünï"


@dataclass
class World:
    runs: list[uuid.UUID] = field(default_factory=list)
    busy_run: uuid.UUID | None = None
    execution: uuid.UUID | None = None
    scopes: list[str] = field(default_factory=list)


def build(store: AgentStore) -> World:
    """Runs in three statuses (one with tasks and a journal), 60 executions in ``team-a``
    and 20 in ``team-b``, and one recorded execution with tool calls and a question
    answered with a private response."""
    world = World()
    for n in range(7):
        run = store.runs.create(f"goal {n}", "/repo", status="running" if n % 2 else "planning")
        world.runs.append(run.id)
    busy = store.runs.create("the busy one", "/repo")
    store.tasks.replace_pending(busy.id, [TaskDraft("Build", "make"), TaskDraft("Test", "t")])
    [claimed] = store.tasks.claim_next("worker-1", run_id=busy.id, lease=timedelta(minutes=5))
    store.tasks.complete(claimed.id, "built", attempt=claimed.attempt)
    for n in range(12):
        store.events.add(busy.id, "worker-1", "note", f"step {n}")
    world.busy_run = busy.id
    world.runs.append(busy.id)
    rng = random.Random(15)
    seed(store, "team-a", 60, rng)
    seed(store, "team-b", 20, rng)
    execution = store.executions.create("team-a", "deploy('v2')", trigger="mcp").id
    for tool in ("github.pulls.get", "slack.post"):
        call = store.executions.record_tool_call("team-a", execution, tool, args={"n": 1})
        store.executions.finish_tool_call("team-a", call.id, "completed", result={"ok": 1})
    question = store.executions.request_interaction("team-a", execution, "approve", purpose="ok?")
    store.executions.resolve_interaction(
        "team-a", question.id, {"approved": True}, response_private={"note": SECRET}
    )
    store.executions.finish("team-a", execution, "completed", result="deployed")
    store.executions.create(HOSTILE_SCOPE, "x")
    world.execution = execution
    world.scopes = ["team-a", "team-b", HOSTILE_SCOPE]
    return world


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest, dialect: str) -> Iterator[tuple[str, World]]:
    """The module's database: its URL and what is in it."""
    databases = request.getfixturevalue(f"{dialect}_databases")
    url = databases.migrated()
    with AgentStore.open(url) as store:
        world = build(store)
    yield url, world
    databases.drop(url)


class Api:
    """The app over an ``AsyncAgentStore``, called from plain test code."""

    def __init__(self, url: str, **options: Any) -> None:
        self.threads_before = set(threading.enumerate())
        self.runner = asyncio.Runner()
        self.store = AsyncAgentStore.open(url)
        self.app = create_app(self.store, **options)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.client.get(path, **kwargs))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.run(self.store.close())
        self.runner.run(aiosqlite_threads_ended(self.threads_before))
        self.runner.close()


async def aiosqlite_threads_ended(before: set[threading.Thread]) -> None:
    """Run this loop until the aiosqlite worker threads started since ``before`` have
    ended: one whose connect failed (a database gone) still posts its stop to the loop,
    which must not be closed before (the thread would fail, and pytest warn)."""
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline and any(
        "_connection_worker_thread" in thread.name for thread in set(threading.enumerate()) - before
    ):
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def api(seeded: tuple[str, World]) -> Iterator[Api]:
    opened = Api(seeded[0])
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def world(seeded: tuple[str, World]) -> World:
    return seeded[1]


@pytest.fixture(scope="module")
def store(seeded: tuple[str, World]) -> Iterator[AgentStore]:
    """The sync face on the same database: what the answers are checked against."""
    with AgentStore.open(seeded[0]) as opened:
        yield opened
