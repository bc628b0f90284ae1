"""Orchestrator runs: the run, per-role agent state, the plan's tasks and their attempts,
and the run journal (events, artifacts, approvals, checkpoints).

Deleting a run deletes everything that belongs to it (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from agentstore.models.base import (
    Base,
    created_at_column,
    status_check,
    status_column,
    updated_at_column,
    utcnow,
)
from agentstore.statuses import ApprovalVerdict, AttemptStatus, RunStatus, TaskStatus
from agentstore.types import AutoIncrementBigInt, uuid7


def run_fk() -> ForeignKey:
    """Every journal table belongs to a run and goes with it."""
    return ForeignKey("runs.id", ondelete="CASCADE")


PENDING = text("status = 'pending'")
IN_PROGRESS = text("status = 'in_progress'")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        status_check("status", RunStatus),
        # Listing runs newest first, with the id as a stable tie-break for keyset pages.
        Index("ix_runs_created_at_id", "created_at", "id"),
        # The same listing filtered by status.
        Index("ix_runs_status_created_at_id", "status", "created_at", "id"),
        # A retention sweep: the runs that ended, by when they last changed.
        Index("ix_runs_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    goal: Mapped[str] = mapped_column(Text)
    repo_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = status_column()
    summary: Mapped[str | None] = mapped_column(Text)
    cycle_count: Mapped[int] = mapped_column(default=0)
    replan_count: Mapped[int] = mapped_column(default=0)
    # The run and its tasks refer to each other; the constraint is added after both
    # tables exist (use_alter), and a deleted task just clears the pointer.
    current_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class AgentState(Base):
    """One row per run and role (roles are free strings: strategy, implementation, …)."""

    __tablename__ = "agent_states"

    run_id: Mapped[uuid.UUID] = mapped_column(run_fk(), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(String(255))
    turns: Mapped[int] = mapped_column(default=0)
    rotation_count: Mapped[int] = mapped_column(default=0)
    last_prompt_path: Mapped[str | None] = mapped_column(Text)
    last_response_path: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = updated_at_column()


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        status_check("status", TaskStatus),
        # Claiming the next pending task of one run in plan order, skipping the ones not
        # yet available without leaving the index: only pending rows are indexed, so the
        # index stays small however long the run's history grows.
        Index(
            "ix_tasks_pending_run_id_position_available_at",
            "run_id",
            "position",
            "available_at",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        # What an attempt record refers to: the task *of that run*.
        UniqueConstraint("id", "run_id"),
        # Finding expired leases: only tasks held by a worker carry one.
        Index(
            "ix_tasks_in_progress_lease_expires_at",
            "lease_expires_at",
            postgresql_where=IN_PROGRESS,
            sqlite_where=IN_PROGRESS,
        ),
        # Listing a run's tasks in plan order, optionally by status.
        Index("ix_tasks_run_id_status_position", "run_id", "status", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    title: Mapped[str] = mapped_column(Text)
    objective: Mapped[str] = mapped_column(Text)
    acceptance_criteria: Mapped[list[str]] = mapped_column(default=list)
    verification_steps: Mapped[list[str]] = mapped_column(default=list)
    allowed_paths: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = status_column()
    position: Mapped[int]
    priority: Mapped[int] = mapped_column(default=0)
    # The fencing token: how many times the task was claimed; each claim adds one, and
    # only the holder of the latest attempt may heartbeat, complete, block or fail it.
    attempt: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int | None]
    # How many of its attempts ended by asking a person: they do not use up max_attempts.
    waits: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    # Claims never take the task before this (a schedule, or a retry's backoff).
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The task's own retry backoff (None: the store's policy): the first retry's delay,
    # doubled on each failure up to the cap.
    retry_delay_seconds: Mapped[float | None]
    retry_max_delay_seconds: Mapped[float | None]
    # Set when someone cancels a task a worker holds; the holder learns it on heartbeat.
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    implementation_summary: Mapped[str | None] = mapped_column(Text)
    blocker_signature: Mapped[str | None] = mapped_column(String(255))
    # What the task last asked a person (``tasks.wait``) and the answer it got (None
    # until answered; cleared when it asks again).
    question: Mapped[Any | None]
    answer: Mapped[Any | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


# Claiming across runs: highest priority first, then the longest available, then plan
# order (a retried task queues behind the ones that waited while it backed off). The index
# holds exactly the claim's order (priority descending), so a claim reads its first
# entries instead of sorting every pending task of every run. (Declared here: a
# descending column needs the mapped column.)
Index(
    "ix_tasks_pending_claim_order",
    Task.priority.desc(),
    Task.available_at,
    Task.position,
    Task.id,
    postgresql_where=PENDING,
    sqlite_where=PENDING,
)


class TaskAttempt(Base):
    __tablename__ = "task_attempts"
    __table_args__ = (
        status_check("status", AttemptStatus),
        # One record per task and attempt; also finds a task's latest attempt.
        UniqueConstraint("task_id", "attempt"),
        # An attempt is at a task of its own run.
        ForeignKeyConstraint(
            ["task_id", "run_id"], ["tasks.id", "tasks.run_id"], ondelete="CASCADE"
        ),
        # A run's recent attempts, newest first.
        Index("ix_task_attempts_run_id_created_at", "run_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    task_id: Mapped[uuid.UUID]
    attempt: Mapped[int]
    status: Mapped[str] = status_column()
    summary: Mapped[str] = mapped_column(Text)
    blocker_signature: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[Any]
    created_at: Mapped[datetime] = created_at_column()


class Event(Base):
    """The run journal. A follower reads a run's events in (transaction id, id) order,
    below the oldest transaction still running (see ``Backend.transaction_id``)."""

    __tablename__ = "events"
    __table_args__ = (
        # A run's latest events (ORDER BY id DESC LIMIT n).
        Index("ix_events_run_id_id", "run_id", "id"),
        # Following a run: (transaction_id, id) after the last event seen.
        Index("ix_events_run_id_transaction_id_id", "run_id", "transaction_id", "id"),
        # An append made again with its key is recorded once (see ``events.add``).
        Index(
            "ux_events_run_id_idempotency_key",
            "run_id",
            "idempotency_key",
            unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"),
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # Pruning the journal by age across all runs.
        Index("ix_events_ts", "ts"),
        {"sqlite_autoincrement": True},  # never reuse the id of a deleted newest event
    )

    id: Mapped[int] = mapped_column(AutoIncrementBigInt, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    ts: Mapped[datetime] = created_at_column()
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any]
    # The writing transaction's id on PostgreSQL; 0 on SQLite (one writer at a time).
    transaction_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # The writer's key for this append, unique within the run (None: no key).
    idempotency_key: Mapped[str | None] = mapped_column(String(255))


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        # A run's artifacts in creation order, optionally for one role.
        Index("ix_artifacts_run_id_role_created_at", "run_id", "role", "created_at"),
        Index("ix_artifacts_run_id_created_at", "run_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    role: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    # ``metadata`` is reserved on declarative classes; the column keeps the plain name.
    metadata_: Mapped[Any] = mapped_column("metadata")
    created_at: Mapped[datetime] = created_at_column()


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        status_check("verdict", ApprovalVerdict),
        # The latest approval of a run from one source, and a run's approvals in order.
        Index("ix_approvals_run_id_source_created_at", "run_id", "source", "created_at"),
        Index("ix_approvals_run_id_created_at", "run_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    source: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32))
    rationale: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any]
    created_at: Mapped[datetime] = created_at_column()


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        status_check("status", RunStatus),
        # A run's latest checkpoint, and its checkpoints in order.
        Index("ix_checkpoints_run_id_created_at", "run_id", "created_at"),
        # Pruning checkpoints by age across all runs.
        Index("ix_checkpoints_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    run_id: Mapped[uuid.UUID] = mapped_column(run_fk())
    status: Mapped[str] = status_column()
    payload: Mapped[Any]
    created_at: Mapped[datetime] = created_at_column()
