"""What ``store.runs`` does beyond one operation per call, in each face: a retention
sweep, one transaction per batch so that it never holds locks for long."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agentstore import validation
from agentstore.orchestrator.retention import RunRetention, SweepCounts, ended_statuses
from agentstore.orchestrator.runs import ENDED

if TYPE_CHECKING:
    from agentstore.boundary import AsyncCalls, Calls


class RunsExtras:
    _calls: Calls

    def sweep(
        self,
        older_than: datetime | timedelta,
        *,
        statuses: Iterable[str] = ENDED,
        batch_size: int = 500,
    ) -> SweepCounts:
        """Delete the runs that ended (``statuses``: completed, failed, cancelled by
        default; only those) and were last changed before ``older_than`` (a time, or an
        age), with everything under them: tasks, attempts, events, artifacts,
        approvals, checkpoints, agent state. ``batch_size`` runs per transaction.
        Returns the rows deleted per table. Raises ``ValidationError``."""
        cutoff, checked = validation.cutoff(older_than), ended_statuses(statuses)
        total = SweepCounts()
        while True:
            counts: SweepCounts = self._calls.write(
                RunRetention, RunRetention.sweep_batch, cutoff, checked, batch_size
            )
            total += counts
            if counts.runs < batch_size:
                return total

    def sweepable(
        self, older_than: datetime | timedelta, *, statuses: Iterable[str] = ENDED
    ) -> int:
        """How many runs ``sweep`` with the same arguments would delete now."""
        cutoff, checked = validation.cutoff(older_than), ended_statuses(statuses)
        return int(self._calls.read(RunRetention, RunRetention.sweepable, cutoff, checked))


class AsyncRunsExtras:
    _calls: AsyncCalls

    async def sweep(
        self,
        older_than: datetime | timedelta,
        *,
        statuses: Iterable[str] = ENDED,
        batch_size: int = 500,
    ) -> SweepCounts:
        """As ``store.runs.sweep`` of the sync face."""
        cutoff, checked = validation.cutoff(older_than), ended_statuses(statuses)
        total = SweepCounts()
        while True:
            counts: SweepCounts = await self._calls.write(
                RunRetention, RunRetention.sweep_batch, cutoff, checked, batch_size
            )
            total += counts
            if counts.runs < batch_size:
                return total

    async def sweepable(
        self, older_than: datetime | timedelta, *, statuses: Iterable[str] = ENDED
    ) -> int:
        """As ``store.runs.sweepable`` of the sync face."""
        cutoff, checked = validation.cutoff(older_than), ended_statuses(statuses)
        return int(await self._calls.read(RunRetention, RunRetention.sweepable, cutoff, checked))
