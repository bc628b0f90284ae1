"""A run at one instant: everything an orchestrator or a person needs to see, read on one
connection (the face reads it in one read-only transaction, so the parts agree)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agentstore import validation
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
from agentstore.orchestrator.task_records import TaskRecord
from agentstore.orchestrator.task_statements import TASK_COLUMNS, TASKS, status_is
from agentstore.statuses import TaskStatus

if TYPE_CHECKING:
    from agentstore.orchestrator.runs import RunRecord

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """Tasks are grouped by status (every status present, maybe empty), each group in plan
    order; the journal lists hold the latest entries, oldest first. Every list is bounded
    (``SnapshotLimits``): ``truncated`` names the lists that had more (``"tasks.pending"``,
    ``"recent_events"``, …), so a reader knows it sees only the first tasks of a status,
    or only the latest entries of a journal."""

    run: RunRecord
    agents: dict[str, AgentStateRecord]
    tasks: dict[TaskStatus, list[TaskRecord]]
    recent_attempts: list[AttemptRecord]
    recent_events: list[EventRecord]
    approvals: list[ApprovalRecord]
    artifacts: list[ArtifactRecord]
    latest_checkpoint: CheckpointRecord | None
    truncated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SnapshotLimits:
    """How many entries each list of a snapshot holds at most."""

    tasks_per_status: int = 500
    attempts: int = 12
    events: int = 50
    approvals: int = 50
    artifacts: int = 100

    def checked(self) -> SnapshotLimits:
        """These limits, each a positive integer. Raises ``ValidationError``."""
        for name in ("tasks_per_status", "attempts", "events", "approvals", "artifacts"):
            validation.positive_int(getattr(self, name), f"limits.{name}", maximum=9_999)
        return self


def _first_of_status(status: TaskStatus) -> sa.Select[Any]:
    # A literal status, as the claims write theirs, so that PostgreSQL matches the
    # partial indexes (pending, in progress) in a generic plan too.
    return (
        sa.select(*TASK_COLUMNS)
        .where(TASKS.c.run_id == sa.bindparam("run_id"), status_is(status))
        .order_by(TASKS.c.position, TASKS.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


# Each status's first tasks in plan order, in one statement: a branch per status reads
# the run's index by (run_id, status, position) and stops at the limit, however many
# tasks the run has. Built once, with bound parameters.
_FIRST_TASKS = sa.union_all(
    *[sa.select(*branch.c) for branch in (_first_of_status(s).subquery() for s in TaskStatus)]
)


def first_tasks(
    connection: Connection, run_id: uuid.UUID, limit: int
) -> dict[TaskStatus, list[TaskRecord]]:
    """The run's first ``limit`` tasks of each status, each list in plan order (as
    ``TaskRepository.list`` gives them), every status present."""
    result = connection.execute(_FIRST_TASKS, {"run_id": run_id, "limit": limit})
    grouped: dict[TaskStatus, list[TaskRecord]] = {status: [] for status in TaskStatus}
    for task in TaskRecord.from_rows(result):
        grouped[task.status].append(task)
    return grouped


def read_snapshot(
    connection: Connection,
    backend: Backend,
    run: RunRecord,
    limits: SnapshotLimits = SnapshotLimits(),
) -> RunSnapshot:
    """The rest of ``run``'s snapshot, through each aggregate's repository. Each list is
    read with one entry more than its limit, which tells whether it was cut."""
    truncated: set[str] = set()

    def first(name: str, items: list[T], limit: int) -> list[T]:  # in plan order
        if len(items) > limit:
            truncated.add(name)
        return items[:limit]

    def latest(name: str, items: list[T], limit: int) -> list[T]:  # oldest first
        if len(items) > limit:
            truncated.add(name)
        return items[len(items) - limit :]

    grouped = {
        status: first(f"tasks.{status.value}", tasks, limits.tasks_per_status)
        for status, tasks in first_tasks(connection, run.id, limits.tasks_per_status + 1).items()
    }
    attempts = AttemptRepository(connection, backend).recent(run.id, limits.attempts + 1)
    events = EventRepository(connection, backend).list(run.id, limits.events + 1)
    approvals = ApprovalRepository(connection, backend).list(run.id, limits.approvals + 1)
    artifacts = ArtifactRepository(connection, backend).list(run.id, limit=limits.artifacts + 1)
    checkpoints = CheckpointRepository(connection, backend)
    return RunSnapshot(
        run=run,
        agents={agent.role: agent for agent in AgentRepository(connection, backend).list(run.id)},
        tasks=grouped,
        recent_attempts=latest("recent_attempts", attempts, limits.attempts),
        recent_events=latest("recent_events", events, limits.events),
        approvals=latest("approvals", approvals, limits.approvals),
        artifacts=latest("artifacts", artifacts, limits.artifacts),
        latest_checkpoint=checkpoints.latest(run.id),
        truncated=frozenset(truncated),
    )
