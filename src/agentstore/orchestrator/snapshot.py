"""A run at one instant: everything an orchestrator or a person needs to see, read in
one transaction so the parts agree with each other."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentstore.boundary import Transactions
from agentstore.statuses import TaskStatus

if TYPE_CHECKING:
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
    from agentstore.orchestrator.runs import RunRecord, RunRepository
    from agentstore.orchestrator.tasks import TaskRecord, TaskRepository


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


class SnapshotReader:
    """Reads a ``RunSnapshot`` through the repositories, inside one read transaction."""

    def __init__(
        self,
        transactions: Transactions,
        *,
        agents: AgentRepository,
        tasks: TaskRepository,
        attempts: AttemptRepository,
        events: EventRepository,
        approvals: ApprovalRepository,
        artifacts: ArtifactRepository,
        checkpoints: CheckpointRepository,
        limits: SnapshotLimits = SnapshotLimits(),
    ) -> None:
        self._tx = transactions
        self._agents = agents
        self._tasks = tasks
        self._attempts = attempts
        self._events = events
        self._approvals = approvals
        self._artifacts = artifacts
        self._checkpoints = checkpoints
        self._limits = limits
        self.runs: RunRepository | None = None

    def read(self, run_id: uuid.UUID) -> RunSnapshot:
        assert self.runs is not None, "SnapshotReader.runs is set by the store"
        limits = self._limits
        with self._tx.read():  # every read below shares this one snapshot
            run = self.runs.get(run_id)
            grouped = {
                status: self._tasks.list(run_id, [status], limit=limits.tasks_per_status)
                for status in TaskStatus
            }
            return RunSnapshot(
                run=run,
                agents={agent.role: agent for agent in self._agents.list(run_id)},
                tasks=grouped,
                recent_attempts=self._attempts.recent(run_id, limits.attempts),
                recent_events=self._events.list(run_id, limits.events),
                approvals=self._approvals.list(run_id, limits.approvals),
                artifacts=self._artifacts.list(run_id, limit=limits.artifacts),
                latest_checkpoint=self._checkpoints.latest(run_id),
            )
