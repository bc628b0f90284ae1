"""What ``store.executions`` does beyond one operation per call, in each face: a sweep
and the expiry of questions past their deadline (one transaction per batch, so that
neither holds locks for long), the operators' inbox, the directory of scopes, and the
recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from agentstore import validation
from agentstore.boundary import AsyncTransactionPerCall, TransactionPerCall
from agentstore.errors import ValidationError
from agentstore.executions.interactions import PendingInteractions
from agentstore.executions.recorder import FLUSH_AFTER, AsyncRecorder, Recorder
from agentstore.executions.records import InboxPage
from agentstore.executions.repository import ExecutionRepository, Trigger
from agentstore.executions.scopes import DEFAULT_SCOPES_PAGE, ExecutionScopes, ScopePage

if TYPE_CHECKING:
    from agentstore.async_faces import AsyncExecutions
    from agentstore.boundary import AsyncCalls, Calls
    from agentstore.faces import Executions


class ExecutionsExtras:
    _calls: Calls

    def sweep(
        self,
        older_than: datetime | timedelta,
        *,
        scope_id: str | None = None,
        batch_size: int = 1000,
    ) -> int:
        """Delete executions created before ``older_than`` (a time, or an age), with
        their tool calls and interactions, ``batch_size`` per transaction so a large
        sweep never holds locks for long. Returns how many executions were deleted.
        Raises ``ValidationError``."""
        cutoff = validation.cutoff(older_than)
        deleted = 0
        while True:
            count = self._calls.write(
                ExecutionRepository,
                ExecutionRepository.sweep_batch,
                cutoff,
                scope_id=scope_id,
                batch_size=batch_size,
            )
            deleted += count
            if count < batch_size:
                return deleted

    def expire_interactions(self, *, scope_id: str | None = None, batch_size: int = 500) -> int:
        """Expire the pending interactions past their deadline (of one scope, or of
        all): each becomes ``expired``, and its execution runs again (``on_expiry=
        "continue"``, once no other question of it is pending) or ends ``failed`` at
        the deadline (``"fail"``, its other pending questions cancelled).
        ``batch_size`` per transaction; returns how many expired. Reads that meet such
        a question expire it themselves: this keeps the listings and counts (``list``,
        ``meta``) true for questions nobody reads. Raises ``ValidationError``."""
        expired = 0
        while True:
            count = self._calls.write(
                PendingInteractions, PendingInteractions.expire_batch, scope_id, batch_size
            )
            expired += count
            if count < batch_size:
                return expired

    def inbox(
        self, scope_id: str | None = None, *, limit: int = 50, after: str | None = None
    ) -> InboxPage:
        """The operators' inbox: every pending interaction of the scope (None: of every
        scope, for the host's own administrators), oldest first, each with its
        execution; ``after``: the ``next_cursor`` of the page before. Never one past its
        deadline (expired first), nor one of an execution that has ended. Raises
        ``ValidationError`` (a bad limit, a malformed cursor)."""
        page: InboxPage = self._calls.read(
            PendingInteractions, PendingInteractions.inbox, scope_id, limit, after
        )
        return page

    def scopes(self, *, limit: int = DEFAULT_SCOPES_PAGE, after: str | None = None) -> ScopePage:
        """The scopes that hold executions, in ``scope_id`` order, each with the time
        of its newest execution; ``after``: the ``next_cursor`` of the page before.
        For the host's own administrators: it names every tenant. Raises
        ``ValidationError`` (a bad limit, a malformed cursor)."""
        page: ScopePage = self._calls.read(ExecutionScopes, ExecutionScopes.page, limit, after)
        return page

    @contextmanager
    def recording(
        self,
        scope_id: str,
        code: str,
        *,
        trigger: Trigger = None,
        flush_after: timedelta = FLUSH_AFTER,
    ) -> Iterator[Recorder]:
        """Record one execution around a block of host code (see ``Recorder``): saved
        in the background ``flush_after`` after each change, and wholly before this
        returns. Storage faults never break the block; they are logged and counted on
        the recorder. Raises ``ValidationError`` inside a unit (see
        ``_own_transactions``), or for a negative ``flush_after``."""
        _own_transactions(self._calls)
        with Recorder(
            cast("Executions", self), self._calls, scope_id, code, trigger, flush_after
        ) as recorder:
            yield recorder


class AsyncExecutionsExtras:
    _calls: AsyncCalls

    async def sweep(
        self,
        older_than: datetime | timedelta,
        *,
        scope_id: str | None = None,
        batch_size: int = 1000,
    ) -> int:
        """As ``store.executions.sweep`` of the sync face."""
        cutoff = validation.cutoff(older_than)
        deleted = 0
        while True:
            count = await self._calls.write(
                ExecutionRepository,
                ExecutionRepository.sweep_batch,
                cutoff,
                scope_id=scope_id,
                batch_size=batch_size,
            )
            deleted += count
            if count < batch_size:
                return deleted

    async def expire_interactions(
        self, *, scope_id: str | None = None, batch_size: int = 500
    ) -> int:
        """As ``store.executions.expire_interactions`` of the sync face."""
        expired = 0
        while True:
            count = await self._calls.write(
                PendingInteractions, PendingInteractions.expire_batch, scope_id, batch_size
            )
            expired += count
            if count < batch_size:
                return expired

    async def inbox(
        self, scope_id: str | None = None, *, limit: int = 50, after: str | None = None
    ) -> InboxPage:
        """As ``store.executions.inbox`` of the sync face."""
        page: InboxPage = await self._calls.read(
            PendingInteractions, PendingInteractions.inbox, scope_id, limit, after
        )
        return page

    async def scopes(
        self, *, limit: int = DEFAULT_SCOPES_PAGE, after: str | None = None
    ) -> ScopePage:
        """As ``store.executions.scopes`` of the sync face."""
        page: ScopePage = await self._calls.read(
            ExecutionScopes, ExecutionScopes.page, limit, after
        )
        return page

    @asynccontextmanager
    async def recording(
        self,
        scope_id: str,
        code: str,
        *,
        trigger: Trigger = None,
        flush_after: timedelta = FLUSH_AFTER,
    ) -> AsyncIterator[AsyncRecorder]:
        """Record one execution around a block of host code: ``async with
        store.executions.recording(scope, code) as rec`` (see ``AsyncRecorder``, and
        the sync face's ``recording``)."""
        _own_transactions(self._calls)
        async with AsyncRecorder(
            cast("AsyncExecutions", self), self._calls, scope_id, code, trigger, flush_after
        ) as recorder:
            yield recorder


def _own_transactions(calls: object) -> None:
    """A recording must outlive the transaction around it: inside a unit (or a host's
    connection), a rollback would erase the execution the host already ran."""
    if not isinstance(calls, TransactionPerCall | AsyncTransactionPerCall):
        raise ValidationError(
            "record executions through the store itself (store.executions.recording), "
            "not a unit: a rollback of the unit would erase the record"
        )
