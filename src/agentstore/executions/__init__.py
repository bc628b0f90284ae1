"""The execution history: executions of agent code per tenant scope, their tool calls and
human-in-the-loop interactions, listed with filters, facets and charts."""

from agentstore.executions.query import ExecutionQuery
from agentstore.executions.recorder import AsyncRecorder, Recorder
from agentstore.executions.records import (
    ChartBucket,
    ExecutionMeta,
    ExecutionPage,
    ExecutionRecord,
    ExecutionView,
    InboxItem,
    InboxPage,
    InteractionRecord,
    NewToolCall,
    ToolCallRecord,
)
from agentstore.executions.repository import ExecutionRepository
from agentstore.executions.scopes import ScopePage, ScopeRecord

__all__ = [
    "AsyncRecorder",
    "ChartBucket",
    "ExecutionMeta",
    "ExecutionPage",
    "ExecutionQuery",
    "ExecutionRecord",
    "ExecutionRepository",
    "ExecutionView",
    "InboxItem",
    "InboxPage",
    "InteractionRecord",
    "NewToolCall",
    "Recorder",
    "ScopePage",
    "ScopeRecord",
    "ToolCallRecord",
]
