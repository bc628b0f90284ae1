"""A worker's steps as single statements, where the database runs INSERT and UPDATE
inside WITH (PostgreSQL: ``Backend.data_modifying_ctes``). Elsewhere the same steps are
several statements in one transaction (``tasks.TaskRepository``).

A step writes several tables: a claim first rescues expired leases (recording each lost
attempt and journalling it); ending a claim records the attempt and journals it;
"complete this, claim the next" does both. Being one statement, each is atomic without a
transaction around it, so a face runs it in autocommit: one round trip to the server.

Every part of one statement sees the same snapshot of the tables, so a task the rescue
frees cannot be claimed by the same statement (the caller claims again when the rescue
freed some and it got fewer tasks than it asked for), and the rescue passes over the
task the statement ends (a statement may not update one row twice). In a step that ends
a claim, nothing else is written unless the claim was still current: the caller then
finds out why without having changed anything.

The rows a step returns are tasks, each with its ``part``: ``closed`` (the task it
ended), ``rescued`` or ``claimed``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from agentstore.backends import Backend
from agentstore.orchestrator.common import EVENTS
from agentstore.orchestrator.task_statements import (
    ATTEMPTS,
    CLOSING,
    HELD,
    LEASE_EXPIRED,
    TASK_COLUMNS,
    TASKS,
    claim,
    held,
    rescue,
)
from agentstore.statuses import AttemptStatus, TaskStatus

CLOSED, RESCUED, CLAIMED = "closed", "rescued", "claimed"
#: A step: a UNION ALL of task rows, each tagged with its part.
Step = sa.CompoundSelect[Any]
_SYSTEM: sa.ColumnElement[str] = sa.literal_column("'system'")
# How each rescue is journalled, by the task's new status (as ``tasks._RESCUED``).
_RESCUE_KIND = {
    TaskStatus.PENDING: ("lease_expired_requeued", "Lease expired; task requeued."),
    TaskStatus.BLOCKED: ("lease_expired_blocked", "Lease expired; attempts used up."),
    TaskStatus.ABANDONED: ("lease_expired_abandoned", "Lease expired; task cancelled."),
}


def _text(value: str) -> sa.ColumnElement[str]:
    # A literal: constants stay out of the parameters (and typed, for jsonb_build_object).
    return sa.literal_column("'" + value.replace("'", "''") + "'", sa.Text)


def _payload(tasks: Any) -> sa.ColumnElement[Any]:
    """An ending's journal payload: ``{"task_id": …, "attempt": …}``."""
    return sa.func.jsonb_build_object(
        _text("task_id"), sa.cast(tasks.c.id, sa.Text), _text("attempt"), tasks.c.attempt_count
    )


def _stamped(backend: Backend, update: sa.Update) -> sa.Update:
    # ``updated_at`` from the statement's clock, not from a parameter set in Python (two
    # UPDATEs of one table in a statement cannot share the parameter SQLAlchemy adds).
    return update.values(updated_at=backend.clock())


def _record_attempts(
    backend: Backend, tasks: Any, status: Any, summary: Any, blocker: Any, result: Any
) -> sa.Insert:
    """The attempt records of ``tasks`` (a CTE of tasks whose claim just ended)."""
    rows = sa.select(
        sa.func.gen_random_uuid(),
        tasks.c.run_id,
        tasks.c.id,
        tasks.c.attempt_count,
        status,
        summary,
        blocker,
        result,
        backend.clock(),
    )
    columns = [
        "id",
        "run_id",
        "task_id",
        "attempt_number",
        "status",
        "summary",
        "blocker_signature",
        "result",
        "created_at",
    ]
    # ON CONFLICT: the caller may already have recorded this attempt (``attempts.add``).
    insert: sa.Insert = backend.insert(ATTEMPTS).from_select(columns, rows)
    return insert.on_conflict_do_nothing()  # type: ignore[attr-defined, no-any-return]


def _journal(backend: Backend, tasks: Any, kind: Any, message: Any) -> sa.Insert:
    """One system event per row of ``tasks``."""
    rows = sa.select(
        tasks.c.run_id,
        backend.clock(),
        _SYSTEM,
        kind,
        message,
        _payload(tasks),
        backend.transaction_id(),
    )
    columns = ["run_id", "ts", "source", "kind", "message", "payload", "transaction_id"]
    return sa.insert(EVENTS).from_select(columns, rows)


def _rescued(backend: Backend, only_if: tuple[sa.ColumnElement[bool], ...]) -> list[Any]:
    """The rescue of expired leases as CTEs: the tasks, their attempts, their events."""
    tasks = _stamped(backend, rescue(backend, only_if=only_if, name="rescuable")).cte("rescued")
    by_status = [(tasks.c.status == s.value, kind) for s, kind in _RESCUE_KIND.items()]
    kind = sa.case(*[(when, _text(k)) for when, (k, _) in by_status])
    message = sa.case(*[(when, _text(m)) for when, (_, m) in by_status])
    attempts = _record_attempts(
        backend,
        tasks,
        _text(AttemptStatus.FAILED.value),
        _text("The lease expired before the holder finished."),
        _text(LEASE_EXPIRED),
        sa.cast(_text("{}"), ATTEMPTS.c.result.type),
    )
    return [
        tasks,
        attempts.cte("rescued_attempts"),
        _journal(backend, tasks, kind, message).cte("rescued_events"),
    ]


def _parts(**parts: Any) -> Step:
    """The task rows of each CTE in ``parts``, tagged with the part's name."""
    selects = [
        sa.select(_text(name).label("part"), *[cte.c[c.name] for c in TASK_COLUMNS])
        for name, cte in parts.items()
    ]
    return sa.union_all(*selects)


def _claim_step(backend: Backend, *, in_run: bool) -> Step:
    """Rescue expired leases, then claim (``claim_next``)."""
    rescued, *journal = _rescued(backend, ())
    claimed = _stamped(backend, claim(backend, in_run=in_run)).cte("claimed")
    return _parts(rescued=rescued, claimed=claimed).add_cte(*journal)


def _closing(backend: Backend) -> list[Any]:
    """End the held task ``:task_id`` under ``:attempt`` (``CLOSING``), recording the
    attempt (``:result``) and journalling ``:kind``, ``:message``."""
    closed = _stamped(backend, held(CLOSING, HELD)).cte("closed")
    attempts = _record_attempts(
        backend,
        closed,
        closed.c.status,
        sa.func.coalesce(closed.c.implementation_summary, _text("")),
        closed.c.blocker_signature,
        sa.bindparam("result", type_=ATTEMPTS.c.result.type),
    )
    kind = sa.bindparam("kind", type_=sa.Text)
    message = sa.bindparam("message", type_=sa.Text)
    return [
        closed,
        attempts.cte("closed_attempt"),
        _journal(backend, closed, kind, message).cte("closed_event"),
    ]


def _close_step(backend: Backend) -> Step:
    closed, *journal = _closing(backend)
    return _parts(closed=closed).add_cte(*journal)


def _close_and_claim_step(backend: Backend, *, in_run: bool) -> Step:
    """End a claim, then (only if it was still current) rescue and claim."""
    closed, *closing_journal = _closing(backend)
    went_through = sa.exists(sa.select(closed.c.id))
    # The rescue passes over the task being ended: one statement updates a row once.
    rescued, *rescue_journal = _rescued(
        backend, (went_through, TASKS.c.id != sa.bindparam("task_id"))
    )
    claiming = claim(backend, in_run=in_run, only_if=(went_through,))
    claimed = _stamped(backend, claiming).cte("claimed")
    return _parts(closed=closed, rescued=rescued, claimed=claimed).add_cte(
        *closing_journal, *rescue_journal
    )


@dataclass(frozen=True)
class Steps:
    """Parameters: a claim's (``:worker``, ``:lease``, ``:now``, ``:limit``,
    ``:in_run``, ``:rescue_limit``), an ending's (``:task_id``, ``:attempt``,
    ``:new_status``, ``:summary``, ``:blocker``, ``:result``, ``:kind``, ``:message``)."""

    claim_in_run: Step
    claim_any_run: Step
    close: Step
    close_and_claim_in_run: Step
    close_and_claim_any_run: Step


@functools.cache
def steps(backend: Backend) -> Steps | None:
    """The steps as single statements, or None where the database cannot."""
    if not backend.data_modifying_ctes:
        return None
    return Steps(
        claim_in_run=_claim_step(backend, in_run=True),
        claim_any_run=_claim_step(backend, in_run=False),
        close=_close_step(backend),
        close_and_claim_in_run=_close_and_claim_step(backend, in_run=True),
        close_and_claim_any_run=_close_and_claim_step(backend, in_run=False),
    )
