"""A run at one instant: everything an orchestrator or a person needs to see, read on one
connection (the face reads it in one read-only transaction, so the parts agree)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from agentstore.backends import Backend
from agentstore.orchestrator.agents import AgentRepository, AgentStateRecord
from agentstore.orchestrator.attempts import AttemptRecord, AttemptRepository
from agentstore.orchestrator.events import EventRecord, EventRepository
from agentstore.orchestrator.journal import (
    ApprovalRecord,
    ApprovalRepository,
    ArtifactRecord,
    ArtifactRepository,
    CheckpointRecord,
    CheckpointRepository,
)
from agentstore.orchestrator.tasks import TaskRecord, TaskRepository
from agentstore.statuses import TaskStatus

if TYPE_CHECKING:
    from agentstore.orchestrator.runs import RunRecord


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """Tasks are grouped by status (every status present, maybe empty), each group in plan
    order; the journal lists hold the latest entries, oldest first. Every list is bounded
    (``SnapshotLimits``)."""

    run: RunRecord
    agents: dict[str, AgentStateRecord]
    tasks: dict[TaskStatus, list[TaskRecord]]
    recent_attempts: list[AttemptRecord]
    recent_events: list[EventRecord]
    approvals: list[ApprovalRecord]
    artifacts: list[ArtifactRecord]
    latest_checkpoint: CheckpointRecord | None


@dataclass(frozen=True, slots=True)
class SnapshotLimits:
    tasks_per_status: int = 500
    attempts: int = 12
    events: int = 50
    approvals: int = 50
    artifacts: int = 100


def read_snapshot(
    connection: Connection,
    backend: Backend,
    run: RunRecord,
    limits: SnapshotLimits = SnapshotLimits(),
) -> RunSnapshot:
    """The rest of ``run``'s snapshot, through each aggregate's repository."""
    tasks = TaskRepository(connection, backend)
    grouped = {
        status: tasks.list(run.id, [status], limit=limits.tasks_per_status) for status in TaskStatus
    }
    checkpoints = CheckpointRepository(connection, backend)
    return RunSnapshot(
        run=run,
        agents={agent.role: agent for agent in AgentRepository(connection, backend).list(run.id)},
        tasks=grouped,
        recent_attempts=AttemptRepository(connection, backend).recent(run.id, limits.attempts),
        recent_events=EventRepository(connection, backend).list(run.id, limits.events),
        approvals=ApprovalRepository(connection, backend).list(run.id, limits.approvals),
        artifacts=ArtifactRepository(connection, backend).list(run.id, limit=limits.artifacts),
        latest_checkpoint=checkpoints.latest(run.id),
    )
