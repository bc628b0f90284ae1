"""Execution history: executions of agent code per tenant scope, with their tool calls and
human-in-the-loop interactions.

Children carry their execution's ``scope_id`` and reference it through the composite key
``(scope_id, execution_id)``, so a child can never hang off another tenant's execution, and
deleting an execution deletes its children.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from agentstore.models.base import (
    Base,
    created_at_column,
    status_check,
    status_column,
    updated_at_column,
)
from agentstore.statuses import ExecutionStatus, InteractionStatus, OnExpiry, ToolCallStatus
from agentstore.types import uuid7

PENDING = text("status = 'pending'")


def _execution_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["scope_id", "execution_id"],
        ["executions.scope_id", "executions.id"],
        ondelete="CASCADE",
    )


class Execution(Base):
    __tablename__ = "executions"
    __table_args__ = (
        status_check("status", ExecutionStatus),
        # The default listing: one scope, newest first, id as the tie-break of the cursor.
        Index("ix_executions_scope_id_created_at_id", "scope_id", "created_at", "id"),
        # Listing one scope sorted by duration (the other sort the listing offers).
        Index("ix_executions_scope_id_duration_ms_id", "scope_id", "duration_ms", "id"),
        # The status filter and the per-status facet counts within a scope.
        Index("ix_executions_scope_id_status_created_at", "scope_id", "status", "created_at"),
        # The trigger filter and the trigger facet within a scope.
        Index("ix_executions_scope_id_trigger_kind", "scope_id", "trigger_kind"),
        # Retention sweeps across every scope by age.
        Index("ix_executions_created_at", "created_at"),
    )

    scope_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    status: Mapped[str] = status_column()
    code: Mapped[str] = mapped_column(Text)
    result: Mapped[Any | None]
    error_text: Mapped[str | None] = mapped_column(Text)
    logs: Mapped[list[str] | None]
    trigger_kind: Mapped[str | None] = mapped_column(String(64))
    trigger_meta: Mapped[dict[str, Any] | None]
    tool_call_count: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ExecutionInteraction(Base):
    __tablename__ = "execution_interactions"
    __table_args__ = (
        _execution_fk(),
        status_check("status", InteractionStatus),
        # An execution's interactions (and its newest pending one), and the
        # had-interaction filter, which probes for any row of an execution.
        Index(
            "ix_execution_interactions_scope_id_execution_id_created_at",
            "scope_id",
            "execution_id",
            "created_at",
        ),
        # Paused executions of a scope: their pending interactions.
        Index("ix_execution_interactions_scope_id_status", "scope_id", "status"),
        status_check("on_expiry", OnExpiry),
        # Expiry: the pending interactions past their deadline, of every scope or of one.
        Index(
            "ix_execution_interactions_pending_expires_at",
            "expires_at",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        Index(
            "ix_execution_interactions_pending_scope_id_expires_at",
            "scope_id",
            "expires_at",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        # The operators' inbox: pending interactions oldest first, of every scope or of one.
        Index(
            "ix_execution_interactions_pending_created_at_id",
            "created_at",
            "id",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        Index(
            "ix_execution_interactions_pending_scope_id_created_at_id",
            "scope_id",
            "created_at",
            "id",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    scope_id: Mapped[str] = mapped_column(String(255))
    execution_id: Mapped[uuid.UUID]
    status: Mapped[str] = status_column()
    kind: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any | None]
    response: Mapped[Any | None]
    response_private: Mapped[Any | None]
    # The deadline (None: none), on the database's clock, and what passing it does.
    expires_at: Mapped[datetime | None]
    on_expiry: Mapped[str] = mapped_column(String(16), server_default=text("'continue'"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ExecutionToolCall(Base):
    __tablename__ = "execution_tool_calls"
    __table_args__ = (
        _execution_fk(),
        status_check("status", ToolCallStatus),
        # An execution's tool calls in start order.
        Index(
            "ix_execution_tool_calls_scope_id_execution_id_started_at",
            "scope_id",
            "execution_id",
            "started_at",
        ),
        # The tool filter (exact path or dotted prefix) and the top-tools facet of a scope.
        Index("ix_execution_tool_calls_scope_id_tool_path", "scope_id", "tool_path"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    scope_id: Mapped[str] = mapped_column(String(255))
    execution_id: Mapped[uuid.UUID]
    status: Mapped[str] = status_column()
    tool_path: Mapped[str] = mapped_column(String(512))
    namespace: Mapped[str] = mapped_column(String(255))
    args: Mapped[Any | None]
    result: Mapped[Any | None]
    error_text: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
