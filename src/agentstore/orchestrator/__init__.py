"""The orchestrator store: runs, agent state, tasks, attempts and the run journal."""

from agentstore.orchestrator.agents import AgentRepository, AgentStateRecord
from agentstore.orchestrator.attempts import AttemptRecord, AttemptRepository
from agentstore.orchestrator.backoff import DEFAULT_BACKOFF, Backoff
from agentstore.orchestrator.events import EventRecord, EventRepository, NewEvent
from agentstore.orchestrator.journal import (
    ApprovalRecord,
    ApprovalRepository,
    ArtifactRecord,
    ArtifactRepository,
    CheckpointRecord,
    CheckpointRepository,
)
from agentstore.orchestrator.retention import SweepCounts
from agentstore.orchestrator.runs import RunPage, RunRecord, RunRepository
from agentstore.orchestrator.snapshot import RunSnapshot, SnapshotLimits
from agentstore.orchestrator.task_batches import BatchHandoff, Completion
from agentstore.orchestrator.tasks import Handoff, TaskDraft, TaskRecord, TaskRepository

__all__ = [
    "DEFAULT_BACKOFF",
    "AgentRepository",
    "AgentStateRecord",
    "ApprovalRecord",
    "ApprovalRepository",
    "ArtifactRecord",
    "ArtifactRepository",
    "AttemptRecord",
    "AttemptRepository",
    "Backoff",
    "BatchHandoff",
    "CheckpointRecord",
    "CheckpointRepository",
    "Completion",
    "EventRecord",
    "EventRepository",
    "Handoff",
    "NewEvent",
    "RunPage",
    "RunRecord",
    "RunRepository",
    "RunSnapshot",
    "SnapshotLimits",
    "SweepCounts",
    "TaskDraft",
    "TaskRecord",
    "TaskRepository",
]
