"""A seeded execution history, and the same data as plain Python for the model checks."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from agentstore import AgentStore
from agentstore.models import Execution, ExecutionInteraction, ExecutionToolCall
from agentstore.statuses import ExecutionStatus
from tests.support.databases import WITH_POOLER

BASE_TIME = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOOLS = ["github.issues.list", "github.issues", "github.pulls.get", "githubx.y", "slack.post"]
TRIGGERS = ["cli", "http", "mcp", None]
CODES = ["print('A')", "return 100%", "a_b = 1", "path = 'C:\\tmp'", "say 'hi'", "Ünïcode ✓"]


@dataclass
class ModelExecution:
    id: uuid.UUID
    scope_id: str
    status: str
    code: str
    trigger_kind: str | None
    created_at: datetime
    duration_ms: int | None
    tools: list[str] = field(default_factory=list)
    interactions: int = 0


def seed(store: AgentStore, scope_id: str, count: int, rng: random.Random) -> list[ModelExecution]:
    """Insert ``count`` executions with chosen times, durations and children (test data is
    written directly: the subject here is reading it)."""
    rows, tool_rows, interaction_rows, model = [], [], [], []
    for n in range(count):
        # Few distinct times and durations, so ties exercise the id tie-break.
        created = BASE_TIME + timedelta(minutes=rng.choice([0, 0, 1, 5, 30, 90, 600]))
        duration = rng.choice([None, 0, 5, 5, 120, 3000])
        item = ModelExecution(
            id=uuid.uuid4(),
            scope_id=scope_id,
            status=rng.choice(list(ExecutionStatus)).value,
            code=rng.choice(CODES) + f" #{n}",
            trigger_kind=rng.choice(TRIGGERS),
            created_at=created,
            duration_ms=duration,
            tools=rng.sample(TOOLS, rng.randint(0, 2)),
            interactions=rng.choice([0, 0, 1, 2]),
        )
        model.append(item)
        rows.append(
            {
                "scope_id": scope_id,
                "id": item.id,
                "status": item.status,
                "code": item.code,
                "trigger_kind": item.trigger_kind,
                "tool_call_count": len(item.tools),
                "started_at": created,
                "duration_ms": duration,
                "created_at": created,
                "updated_at": created,
            }
        )
        tool_rows += [
            {
                "scope_id": scope_id,
                "execution_id": item.id,
                "status": "completed",
                "tool_path": tool,
                "namespace": tool.split(".")[0],
                "started_at": created,
            }
            for tool in item.tools
        ]
        interaction_rows += [
            {
                "scope_id": scope_id,
                "execution_id": item.id,
                "status": "resolved",
                "kind": "form",
                "created_at": created,
                "updated_at": created,
            }
            for _ in range(item.interactions)
        ]
    with store.engine.begin() as connection:
        connection.execute(sa.insert(Execution), rows)
        if tool_rows:
            connection.execute(sa.insert(ExecutionToolCall), tool_rows)
        if interaction_rows:
            connection.execute(sa.insert(ExecutionInteraction), interaction_rows)
    return model


@pytest.fixture(params=WITH_POOLER)
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite, PostgreSQL, and PostgreSQL through PgBouncer in transaction mode."""
    return str(request.param)


@pytest.fixture
def history(store: AgentStore) -> list[ModelExecution]:
    """80 executions in scope ``team-a`` and 40 decoys in ``team-b``."""
    rng = random.Random(20261122)
    data = seed(store, "team-a", 80, rng)
    seed(store, "team-b", 40, rng)
    return data
