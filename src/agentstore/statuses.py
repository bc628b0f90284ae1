"""Every status vocabulary in one place. Each is stored as text under a CHECK constraint
listing exactly these values, so a bad status is refused by the database too."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The life of an orchestrator run."""

    PLANNING = "planning"  # created; the strategy agent is drafting the plan
    RUNNING = "running"  # tasks are being worked
    PAUSED = "paused"  # stopped on purpose; resumes later (tasks get requeued)
    BLOCKED = "blocked"  # cannot go on without outside help
    COMPLETED = "completed"  # the goal is met
    FAILED = "failed"  # gave up
    CANCELLED = "cancelled"  # stopped by a person


class TaskStatus(StrEnum):
    """The life of a task in a run's plan."""

    PENDING = "pending"  # waiting to be claimed
    IN_PROGRESS = "in_progress"  # claimed by a worker, under a lease
    WAITING = "waiting"  # asked a person; held by nobody, claimable again once answered
    COMPLETED = "completed"
    BLOCKED = "blocked"  # cannot be done as planned (or its lease kept expiring)
    ABANDONED = "abandoned"  # dropped when the plan was replaced


class AttemptStatus(StrEnum):
    """How one attempt at a task ended."""

    COMPLETED = "completed"
    BLOCKED = "blocked"
    FAILED = "failed"  # the attempt errored; the task may be tried again
    ABANDONED = "abandoned"
    WAITING = "waiting"  # the attempt asked a person; the task waits for the answer


class ApprovalVerdict(StrEnum):
    """What a reviewer (a checker agent or a person) said."""

    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"


class ExecutionStatus(StrEnum):
    """The life of one execution of agent code."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_INTERACTION = "waiting_for_interaction"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InteractionStatus(StrEnum):
    """A human-in-the-loop question asked by an execution."""

    PENDING = "pending"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # its deadline passed unanswered


class OnExpiry(StrEnum):
    """What an interaction's deadline passing does to its execution."""

    CONTINUE = "continue"  # the execution runs again (once nothing else is pending)
    FAIL = "fail"  # the execution ends failed


class ToolCallStatus(StrEnum):
    """One tool call made by an execution."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.BLOCKED, TaskStatus.ABANDONED})
TERMINAL_EXECUTION_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
