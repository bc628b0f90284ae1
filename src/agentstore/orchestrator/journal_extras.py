"""What ``store.events`` and ``store.checkpoints`` do beyond one operation per call, in
each face: a prune, one transaction per batch (see ``journal_retention``)."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentstore.orchestrator.journal_retention import (
    CHECKPOINTS,
    EVENTS,
    CheckpointRetention,
    Journal,
    JournalRetention,
    Prune,
    Step,
    pruning,
)
from agentstore.validation import Id

if TYPE_CHECKING:
    from agentstore.boundary import AsyncCalls, Calls

#: The repository a journal's prune runs as (named for its face's aggregate).
Retention = type[JournalRetention]


def _run(calls: Calls, retention: Retention, steps: Generator[Step, Any, int]) -> int:
    result: Any = None
    try:
        while True:
            access, operation, arguments = steps.send(result)
            result = getattr(calls, access)(retention, operation, *arguments)
    except StopIteration as done:
        return int(done.value)


async def _run_async(
    calls: AsyncCalls, retention: Retention, steps: Generator[Step, Any, int]
) -> int:
    result: Any = None
    try:
        while True:
            access, operation, arguments = steps.send(result)
            result = await getattr(calls, access)(retention, operation, *arguments)
    except StopIteration as done:
        return int(done.value)


class _Pruned:
    _calls: Calls
    _journal: Journal
    _retention: Retention

    def prune(
        self,
        run_id: Id | None = None,
        *,
        keep_latest: int | None = None,
        older_than: datetime | timedelta | None = None,
        batch_size: int = 1000,
    ) -> int:
        """Delete rows of the run (``run_id``; None: of every run) that are neither
        among its ``keep_latest`` newest nor younger than ``older_than`` (a time, or an
        age); give either or both. ``batch_size`` rows per transaction. Returns how many
        were deleted. A follower whose last event seen is deleted starts again from the
        oldest one kept; an event's idempotency key goes with it. Raises
        ``ValidationError``."""
        prune = Prune.checked(self._journal, run_id, keep_latest, older_than, batch_size)
        return _run(self._calls, self._retention, pruning(prune))

    def prunable(
        self,
        run_id: Id | None = None,
        *,
        keep_latest: int | None = None,
        older_than: datetime | timedelta | None = None,
    ) -> int:
        """How many rows ``prune`` with the same arguments would delete now."""
        prune = Prune.checked(self._journal, run_id, keep_latest, older_than, 1)
        return int(self._calls.read(self._retention, JournalRetention.prunable, prune))


class _AsyncPruned:
    _calls: AsyncCalls
    _journal: Journal
    _retention: Retention

    async def prune(
        self,
        run_id: Id | None = None,
        *,
        keep_latest: int | None = None,
        older_than: datetime | timedelta | None = None,
        batch_size: int = 1000,
    ) -> int:
        """As ``prune`` of the sync face."""
        prune = Prune.checked(self._journal, run_id, keep_latest, older_than, batch_size)
        return await _run_async(self._calls, self._retention, pruning(prune))

    async def prunable(
        self,
        run_id: Id | None = None,
        *,
        keep_latest: int | None = None,
        older_than: datetime | timedelta | None = None,
    ) -> int:
        """As ``prunable`` of the sync face."""
        prune = Prune.checked(self._journal, run_id, keep_latest, older_than, 1)
        return int(await self._calls.read(self._retention, JournalRetention.prunable, prune))


class EventsExtras(_Pruned):
    _journal, _retention = EVENTS, JournalRetention


class AsyncEventsExtras(_AsyncPruned):
    _journal, _retention = EVENTS, JournalRetention


class CheckpointsExtras(_Pruned):
    _journal, _retention = CHECKPOINTS, CheckpointRetention


class AsyncCheckpointsExtras(_AsyncPruned):
    _journal, _retention = CHECKPOINTS, CheckpointRetention
