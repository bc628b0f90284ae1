"""agentstore: storage for AI-agent systems, on SQLite (embedded) and PostgreSQL (cloud)."""

from agentstore.backends import DEFAULT_URL, create_engine, resolve_url
from agentstore.orchestrator import (
    AgentStateRecord,
    ApprovalRecord,
    ArtifactRecord,
    AttemptRecord,
    CheckpointRecord,
    EventRecord,
    NewEvent,
    RunPage,
    RunRecord,
    RunSnapshot,
    TaskDraft,
    TaskRecord,
)
from agentstore.schema import migrate
from agentstore.statuses import (
    ApprovalVerdict,
    AttemptStatus,
    ExecutionStatus,
    InteractionStatus,
    RunStatus,
    TaskStatus,
    ToolCallStatus,
)
from agentstore.store import AgentStore

__all__ = [
    "DEFAULT_URL",
    "AgentStateRecord",
    "AgentStore",
    "ApprovalRecord",
    "ApprovalVerdict",
    "ArtifactRecord",
    "AttemptRecord",
    "AttemptStatus",
    "CheckpointRecord",
    "EventRecord",
    "ExecutionStatus",
    "InteractionStatus",
    "NewEvent",
    "RunPage",
    "RunRecord",
    "RunSnapshot",
    "RunStatus",
    "TaskDraft",
    "TaskRecord",
    "TaskStatus",
    "ToolCallStatus",
    "create_engine",
    "migrate",
    "resolve_url",
]
