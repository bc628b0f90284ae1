"""The ORM models: one set for SQLite and PostgreSQL. ``Base.metadata`` is what the
migrations are checked against."""

from agentstore.models.base import Base, core_table
from agentstore.models.executions import Execution, ExecutionInteraction, ExecutionToolCall
from agentstore.models.orchestrator import (
    AgentState,
    Approval,
    Artifact,
    Checkpoint,
    Event,
    Run,
    Task,
    TaskAttempt,
)

__all__ = [
    "AgentState",
    "Approval",
    "Artifact",
    "Base",
    "Checkpoint",
    "Event",
    "Execution",
    "ExecutionInteraction",
    "ExecutionToolCall",
    "Run",
    "Task",
    "TaskAttempt",
    "core_table",
]
