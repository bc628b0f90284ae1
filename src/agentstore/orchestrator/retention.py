"""Retention for orchestrator runs: finished runs deleted with everything under them, in
bounded batches (the faces run one batch per transaction, see ``run_extras``), with an
exact count per table."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agentstore import validation
from agentstore.errors import ValidationError
from agentstore.models import (
    AgentState,
    Approval,
    Artifact,
    Checkpoint,
    Event,
    Run,
    Task,
    TaskAttempt,
)
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.runs import ENDED
from agentstore.statuses import RunStatus

# What belongs to a run, each deleted by its own run id index before the run itself, so
# that every table's count is exact (a cascade would delete as many, uncounted).
UNDER_A_RUN: tuple[Any, ...] = (
    Event,
    Checkpoint,
    Approval,
    Artifact,
    TaskAttempt,
    AgentState,
    Task,
)


@dataclass(frozen=True, slots=True)
class SweepCounts:
    """How many rows a sweep deleted, per table."""

    runs: int = 0
    tasks: int = 0
    task_attempts: int = 0
    events: int = 0
    artifacts: int = 0
    approvals: int = 0
    checkpoints: int = 0
    agent_states: int = 0

    def __add__(self, other: SweepCounts) -> SweepCounts:
        return SweepCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


def ended_statuses(statuses: Any) -> list[str]:
    """The statuses a sweep may delete runs in: ended ones only (a live run is worked)."""
    checked = validation.statuses(statuses, RunStatus, "statuses")
    if not checked:
        raise ValidationError("statuses must name at least one status a run ends in")
    live = [s.value for s in checked if s not in ENDED]
    if live:
        ended = ", ".join(s.value for s in ENDED)
        raise ValidationError(f"a sweep deletes runs that ended ({ended}), not {live}")
    return [s.value for s in checked]


def _finished(cutoff: datetime, statuses: list[str]) -> list[Any]:
    return [Run.status.in_(statuses), Run.updated_at < cutoff]


class RunRetention(Repository, aggregate="runs"):
    """The batches of ``store.runs.sweep``."""

    __slots__ = ()

    @writes
    def sweep_batch(self, cutoff: datetime, statuses: list[str], batch_size: int) -> SweepCounts:
        """Delete up to ``batch_size`` runs in ``statuses`` last changed before
        ``cutoff``, with everything under them; the rows deleted per table."""
        validation.positive_int(batch_size, "batch_size", maximum=10_000)
        chosen = sa.select(Run.id).where(*_finished(cutoff, statuses))
        chosen = chosen.order_by(Run.updated_at).limit(batch_size)
        # Locked (PostgreSQL: passing over runs another sweep holds) so that a run
        # reopened meanwhile waits for this batch, rather than losing its tasks.
        locked = sa.select(Run.id).where(self._backend.claimable(chosen, Run.id))
        run_ids = list(self._connection.execute(locked).scalars())
        if not run_ids:
            return SweepCounts()
        counts = {
            model.__tablename__: self._delete(model, model.run_id.in_(run_ids))
            for model in UNDER_A_RUN
        }
        return SweepCounts(runs=self._delete(Run, Run.id.in_(run_ids)), **counts)

    @reads
    def sweepable(self, cutoff: datetime, statuses: list[str]) -> int:
        """How many runs ``sweep_batch`` would delete now, in all its batches."""
        count = sa.select(sa.func.count()).select_from(Run).where(*_finished(cutoff, statuses))
        return int(self._connection.execute(count).scalar_one())

    def _delete(self, model: Any, where: Any) -> int:
        return int(self._connection.execute(sa.delete(model).where(where)).rowcount)
