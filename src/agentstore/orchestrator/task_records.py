"""What a planner writes (``TaskDraft``) and what the store gives back (``TaskRecord``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Result

from agentstore import validation
from agentstore.errors import ValidationError
from agentstore.models import Task
from agentstore.orchestrator.backoff import Backoff
from agentstore.statuses import TaskStatus


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """One step of a plan, as the planner writes it. ``available_at`` (a time) or
    ``delay`` (after planning) keeps it from being claimed before then; ``backoff`` is
    its own retry policy (default: the store's)."""

    title: str
    objective: str
    acceptance_criteria: Sequence[str] = ()
    verification_steps: Sequence[str] = ()
    allowed_paths: Sequence[str] = ()
    priority: int = 0
    max_attempts: int | None = None
    available_at: datetime | None = None
    delay: timedelta | None = None
    backoff: Backoff | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: UUID
    run_id: UUID
    title: str
    objective: str
    acceptance_criteria: tuple[str, ...]
    verification_steps: tuple[str, ...]
    allowed_paths: tuple[str, ...]
    status: TaskStatus
    position: int
    priority: int
    #: The fencing token (0 until the first claim; each claim adds one).
    attempt: int
    max_attempts: int | None
    #: How many attempts ended by asking a person: they do not use up ``max_attempts``.
    waits: int
    claimed_by: str | None
    lease_expires_at: datetime | None
    available_at: datetime
    backoff: Backoff | None
    #: Set once someone cancelled the task; a holder that sees it stops.
    cancel_reason: str | None
    implementation_summary: str | None
    blocker_signature: str | None
    #: What the task last asked a person (``tasks.wait``), and the answer (None until
    #: answered; cleared when it asks again): a handler sees both once it runs again.
    question: Any
    answer: Any
    created_at: datetime
    updated_at: datetime

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_reason is not None

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        mapping = row._mapping
        [task] = _tasks([tuple([mapping[name] for name in _COLUMNS])])
        return task

    @classmethod
    def from_driver_rows(
        cls, keys: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
    ) -> list[TaskRecord]:
        """Rows of ``run_on_driver`` (``keys``, their column names) as records."""
        return _tasks(map(_columns_of(keys), rows))

    @classmethod
    def from_rows(cls, rows: Result[Any]) -> list[TaskRecord]:
        """Every row of ``rows`` as ``from_row`` builds it, the columns found by name
        once for the whole result rather than on every row (a snapshot reads hundreds)."""
        get = _columns_of(tuple(rows.keys()))
        return _tasks(map(get, rows.all()))  # all: one fetch, not one a row


#: The columns a task's record is read from, in the order of its fields (``backoff``
#: from the two retry columns).
_COLUMNS = (
    *("id", "run_id", "title", "objective"),
    *("acceptance_criteria", "verification_steps", "allowed_paths", "status"),
    *("position", "priority", "attempt", "max_attempts", "waits", "claimed_by"),
    *("lease_expires_at", "available_at", "retry_delay_seconds", "retry_max_delay_seconds"),
    *("cancel_reason", "implementation_summary", "blocker_signature", "question", "answer"),
    *("created_at", "updated_at"),
)
_STATUSES = {status.value: status for status in TaskStatus}


@functools.lru_cache(maxsize=64)
def _columns_of(keys: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """For rows with these column names: their values in ``_COLUMNS`` order."""
    return itemgetter(*[keys.index(name) for name in _COLUMNS])


def _tasks(rows: Iterable[tuple[Any, ...]]) -> list[TaskRecord]:
    """Records of rows of ``_COLUMNS``' values: one comprehension, no call a row."""
    return [
        TaskRecord(
            id,
            run_id,
            title,
            objective,
            tuple(acceptance_criteria),
            tuple(verification_steps),
            tuple(allowed_paths),
            _STATUSES.get(status) or TaskStatus(status),
            position,
            priority,
            attempt,
            max_attempts,
            waits,
            claimed_by,
            lease_expires_at,
            available_at,
            None if first is None else Backoff(timedelta(seconds=first), timedelta(seconds=cap)),
            cancel_reason,
            implementation_summary,
            blocker_signature,
            question,
            answer,
            created_at,
            updated_at,
        )
        for (
            id,
            run_id,
            title,
            objective,
            acceptance_criteria,
            verification_steps,
            allowed_paths,
            status,
            position,
            priority,
            attempt,
            max_attempts,
            waits,
            claimed_by,
            lease_expires_at,
            available_at,
            first,
            cap,
            cancel_reason,
            implementation_summary,
            blocker_signature,
            question,
            answer,
            created_at,
            updated_at,
        ) in rows
    ]


def check_draft(draft: TaskDraft) -> dict[str, Any]:
    """The row of a draft (its availability as ``not_before`` or ``delay``), or
    ``ValidationError``."""
    if not isinstance(draft, TaskDraft):
        raise ValidationError(f"expected a TaskDraft, got {type(draft).__name__}")

    def strings(values: Sequence[str], name: str) -> list[str]:
        checked = validation.sequence(values, name)
        if not all(isinstance(v, str) for v in checked):
            raise ValidationError(f"{name} must be a list of strings")
        return checked

    if draft.available_at is not None and draft.delay is not None:
        raise ValidationError("give a task available_at or delay, not both")
    if draft.backoff is not None and not isinstance(draft.backoff, Backoff):
        raise ValidationError(f"backoff must be a Backoff, got {type(draft.backoff).__name__}")
    return {
        "title": validation.text(draft.title, Task.title),
        "objective": validation.text(draft.objective, Task.objective),
        "acceptance_criteria": strings(draft.acceptance_criteria, "acceptance_criteria"),
        "verification_steps": strings(draft.verification_steps, "verification_steps"),
        "allowed_paths": strings(draft.allowed_paths, "allowed_paths"),
        "priority": validation.positive_int(draft.priority, "priority", minimum=-(2**31)),
        "max_attempts": None
        if draft.max_attempts is None
        else validation.positive_int(draft.max_attempts, "max_attempts"),
        "not_before": validation.aware(draft.available_at, "available_at"),
        "delay": validation.delay(draft.delay or timedelta(0), "delay"),
        "retry_delay_seconds": None
        if draft.backoff is None
        else draft.backoff.first.total_seconds(),
        "retry_max_delay_seconds": None
        if draft.backoff is None
        else draft.backoff.cap.total_seconds(),
    }
