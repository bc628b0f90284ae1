"""agentstore: storage for AI-agent systems, on SQLite (embedded) and PostgreSQL (cloud)."""

import logging

from agentstore.async_store import AsyncAgentStore, AsyncUnit
from agentstore.backends import DEFAULT_URL, create_async_engine, create_engine, resolve_url
from agentstore.executions import (
    AsyncRecorder,
    ChartBucket,
    ExecutionMeta,
    ExecutionPage,
    ExecutionQuery,
    ExecutionRecord,
    ExecutionView,
    InboxItem,
    InboxPage,
    InteractionRecord,
    NewToolCall,
    Recorder,
    ScopePage,
    ScopeRecord,
    ToolCallRecord,
)
from agentstore.orchestrator import (
    AgentStateRecord,
    ApprovalRecord,
    ArtifactRecord,
    AttemptRecord,
    Backoff,
    BatchHandoff,
    CheckpointRecord,
    Completion,
    EventRecord,
    NewEvent,
    RunPage,
    RunRecord,
    RunSnapshot,
    SnapshotLimits,
    SweepCounts,
    TaskDraft,
    TaskRecord,
)
from agentstore.schema import migrate
from agentstore.statuses import (
    ApprovalVerdict,
    AttemptStatus,
    ExecutionStatus,
    InteractionStatus,
    OnExpiry,
    RunStatus,
    TaskStatus,
    ToolCallStatus,
)
from agentstore.store import AgentStore, Unit
from agentstore.validation import Id

__all__ = [
    "DEFAULT_URL",
    "AgentStateRecord",
    "AgentStore",
    "ApprovalRecord",
    "ApprovalVerdict",
    "ArtifactRecord",
    "AsyncAgentStore",
    "AsyncRecorder",
    "AsyncUnit",
    "AttemptRecord",
    "AttemptStatus",
    "Backoff",
    "BatchHandoff",
    "ChartBucket",
    "CheckpointRecord",
    "Completion",
    "EventRecord",
    "ExecutionMeta",
    "ExecutionPage",
    "ExecutionQuery",
    "ExecutionRecord",
    "ExecutionStatus",
    "ExecutionView",
    "Id",
    "InboxItem",
    "InboxPage",
    "InteractionRecord",
    "InteractionStatus",
    "NewEvent",
    "NewToolCall",
    "OnExpiry",
    "Recorder",
    "RunPage",
    "RunRecord",
    "RunSnapshot",
    "RunStatus",
    "ScopePage",
    "ScopeRecord",
    "SnapshotLimits",
    "SweepCounts",
    "TaskDraft",
    "TaskRecord",
    "TaskStatus",
    "ToolCallRecord",
    "ToolCallStatus",
    "Unit",
    "create_async_engine",
    "create_engine",
    "migrate",
    "resolve_url",
]

# A library logs but leaves where logs go to the application (the `agentstore worker`
# command configures logging itself).
logging.getLogger("agentstore").addHandler(logging.NullHandler())
