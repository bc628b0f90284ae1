"""What the execution history returns: immutable records, pages and listing meta."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentstore.records import from_row
from agentstore.statuses import ExecutionStatus, InteractionStatus, OnExpiry, ToolCallStatus


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    scope_id: str
    id: uuid.UUID
    status: ExecutionStatus
    code: str
    result: Any
    error_text: str | None
    logs: list[str] | None
    trigger_kind: str | None
    trigger_meta: dict[str, Any] | None
    tool_call_count: int
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ExecutionRecord:
        return from_row(cls, row._mapping, status=ExecutionStatus(row.status))


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """A human-in-the-loop question. ``response_private`` is None unless asked for;
    ``expires_at`` (on the database's clock) is None for a question without a deadline,
    and ``on_expiry`` says what its passing does to the execution."""

    id: uuid.UUID
    scope_id: str
    execution_id: uuid.UUID
    status: InteractionStatus
    kind: str
    purpose: str | None
    payload: Any
    response: Any
    response_private: Any
    expires_at: datetime | None
    on_expiry: OnExpiry
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any, *, include_private: bool = False) -> InteractionRecord:
        mapping = row._mapping
        private = mapping["response_private"] if include_private else None
        return from_row(
            cls,
            mapping,
            status=InteractionStatus(mapping["status"]),
            on_expiry=OnExpiry(mapping["on_expiry"]),
            response_private=private,
        )


@dataclass(frozen=True, slots=True)
class NewToolCall:
    """A tool call to record with ``record_tool_calls``."""

    tool_path: str
    args: Any = None
    namespace: str | None = None  # default: the path's first dotted segment
    started_at: datetime | None = None  # default: now
    #: The caller's id for the call (default: made here). Recording again a call with its
    #: id (a retry after a lost reply) records nothing new.
    id: uuid.UUID | str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    id: uuid.UUID
    scope_id: str
    execution_id: uuid.UUID
    status: ToolCallStatus
    tool_path: str
    namespace: str
    args: Any
    result: Any
    error_text: str | None
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None

    @classmethod
    def from_row(cls, row: Any) -> ToolCallRecord:
        return from_row(cls, row._mapping, status=ToolCallStatus(row.status))


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """An execution with its newest pending interaction (None when it waits for nobody)."""

    execution: ExecutionRecord
    pending_interaction: InteractionRecord | None


@dataclass(frozen=True, slots=True)
class ExecutionPage:
    """One page of a listing; pass ``next_cursor`` back for the next (None: the end)."""

    items: list[ExecutionRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A pending interaction with its execution, as an operator's inbox lists it."""

    interaction: InteractionRecord
    execution: ExecutionRecord


@dataclass(frozen=True, slots=True)
class InboxPage:
    """One page of the inbox, oldest question first; pass ``next_cursor`` back for the
    next (None: the end)."""

    items: list[InboxItem]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ChartBucket:
    """Executions created in ``[start, start + width)``, counted by status."""

    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ExecutionMeta:
    total: int  # executions in the scope
    filtered: int  # executions matching the query's filters
    statuses: dict[str, int]  # every status, zeros included
    triggers: dict[str | None, int]  # None: executions with no trigger
    top_tools: list[tuple[str, int]]  # the 20 most called tool paths, most first
    with_interaction: int
    without_interaction: int
    bucket_seconds: int
    chart: list[ChartBucket]  # non-empty buckets, oldest first
