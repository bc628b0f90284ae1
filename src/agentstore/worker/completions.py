"""A worker's completions, written as a group: the tasks whose handlers finish while a
write is under way are completed together by the next write, with the claim of their
successors, in one transaction (``store.tasks.complete_many``: one statement per table
for the whole group). A task finishing alone waits for nothing: its write starts at
once. The more handlers finish at the same time, the fewer writes per task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agentstore.orchestrator import BatchHandoff, Completion

#: Writes a group of completions (and claims their successors).
Settle = Callable[[list[Completion]], Awaitable[BatchHandoff]]


class GroupCommit:
    """Completions waiting for a write, and the write under way (one at a time)."""

    def __init__(self, settle: Settle) -> None:
        self._settle = settle
        self._waiting: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def complete(self, completion: Completion) -> bool:
        """Complete the task with the next write: True once completed, False if its
        claim was lost (its result discarded). Raises what that write raised (for
        every completion of the group: the caller then completes its task alone)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((completion, done))
        if self._writing is None:
            self._writing = asyncio.ensure_future(self._write())
        return await done

    async def _write(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    handoff = await self._settle([completion for completion, _ in group])
                except Exception as exc:  # each waiter hears it and goes on alone
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                stale = set(handoff.stale)
                for completion, done in group:
                    if not done.done():  # else its waiter was cancelled meanwhile
                        done.set_result(completion.task_id not in stale)
        finally:
            self._writing = None
