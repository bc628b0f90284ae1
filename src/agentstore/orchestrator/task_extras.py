"""What ``store.tasks`` does beyond ``TaskRepository``, in each face: a task that waits
for a person (``task_waits``), the tasks of runs counted by status (``task_counts``), and
completions in batches (``task_batches``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from agentstore.orchestrator.task_batches import BatchHandoff, Completion, TaskBatches
from agentstore.orchestrator.task_counts import TaskCounts
from agentstore.orchestrator.task_records import TaskRecord
from agentstore.orchestrator.task_waits import TaskWaits
from agentstore.statuses import TaskStatus
from agentstore.validation import Id

if TYPE_CHECKING:
    from agentstore.boundary import AsyncCalls, Calls


class TasksExtras:
    _calls: Calls

    def wait(self, task_id: Id, question: Any, *, attempt: int) -> TaskRecord:
        """The holder of the claim ``attempt`` asks a person ``question`` (any JSON value
        but null) and gives the task up meanwhile: ``waiting``, held by nobody, its
        previous ``answer`` cleared, the attempt recorded (``waiting``, the question as
        its result) and ``task_waiting`` journalled. A task cancelled while held is
        ``abandoned`` instead (``task_cancelled``). ``answer`` makes it pending again.

        A wait is not a failure: the attempts that ended by asking (``TaskRecord.waits``)
        do not use up ``max_attempts`` and do not lengthen the backoff, though the next
        claim takes a new attempt number (the fencing token always grows).

        Made again after it committed (its reply was lost), the same wait under the same
        attempt returns the task and writes nothing. Raises ``StaleClaimError`` (the
        claim is no longer current), ``InvalidTransitionError`` (the task is not in
        progress, or ended otherwise), ``NotFoundError``, ``ValidationError``."""
        return self._calls.write(TaskWaits, TaskWaits.wait, task_id, question, attempt=attempt)

    def answer(self, task_id: Id, answer: Any, *, attempt: int | None = None) -> TaskRecord:
        """A person's ``answer`` (any JSON value but null) to a waiting task: pending and
        available at once, ``answer`` stored (the next claim's handler reads it),
        ``task_answered`` journalled. ``attempt``, if given, is the wait being answered
        (the waiting task's ``attempt``): an answer meant for an earlier question is then
        refused, never taken for the answer to a later one.

        Decided once: a task that is not waiting refuses an answer, except the same
        answer to the same wait made again (its reply was lost), which returns the task
        and writes nothing. Raises ``ConflictError`` (not waiting: answered already,
        cancelled, or asking again under another ``attempt``), ``NotFoundError``,
        ``ValidationError``."""
        return self._calls.write(TaskWaits, TaskWaits.answer, task_id, answer, attempt=attempt)

    def counts(self, run_ids: Iterable[Id]) -> dict[UUID, dict[TaskStatus, int]]:
        """How many tasks each of ``run_ids`` has in each status: every run given and
        every status present (zeros included; an unknown run counts none), counted by
        the database. At most 500 runs at once. Raises ``ValidationError``."""
        return self._calls.read(TaskCounts, TaskCounts.by_status, run_ids)

    def complete_many(
        self,
        completions: Iterable[Completion],
        *,
        worker: str | None = None,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 0,
    ) -> BatchHandoff:
        """Complete every task of ``completions`` (at most 1,000, each a ``Completion``:
        a task the caller holds under ``attempt``), then, with ``limit`` > 0, claim up to
        ``limit`` tasks for ``worker`` (as ``claim_next``: of ``run_id`` or any run, under
        a lease of ``lease``), all in one transaction: a worker's step in steady state
        when it finished several tasks. Each completion is fenced, recorded (its attempt,
        with ``result``) and journalled (``task_completed``) as ``complete`` does it, with
        one statement per table for the whole batch.

        Returns a ``BatchHandoff``, in the order given: the tasks completed; the ids of
        the tasks whose claim was lost (``complete`` would raise ``StaleClaimError``):
        their completion is discarded and the others stand; the tasks claimed. Made
        again after it committed (its reply was lost), a completion writes nothing and
        its task is reported completed. Raises ``InvalidTransitionError`` (a task the
        caller ended otherwise under that attempt), ``NotFoundError``: then nothing is
        written, the claim included; ``ValidationError`` (a bad completion, a task named
        twice, a claim without ``worker``; nothing is written)."""
        return self._calls.write(
            TaskBatches,
            TaskBatches.complete_many,
            completions,
            worker=worker,
            run_id=run_id,
            lease=lease,
            limit=limit,
        )


class AsyncTasksExtras:
    _calls: AsyncCalls

    async def wait(self, task_id: Id, question: Any, *, attempt: int) -> TaskRecord:
        """As ``store.tasks.wait`` of the sync face."""
        return await self._calls.write(
            TaskWaits, TaskWaits.wait, task_id, question, attempt=attempt
        )

    async def answer(self, task_id: Id, answer: Any, *, attempt: int | None = None) -> TaskRecord:
        """As ``store.tasks.answer`` of the sync face."""
        return await self._calls.write(
            TaskWaits, TaskWaits.answer, task_id, answer, attempt=attempt
        )

    async def counts(self, run_ids: Iterable[Id]) -> dict[UUID, dict[TaskStatus, int]]:
        """As ``store.tasks.counts`` of the sync face."""
        return await self._calls.read(TaskCounts, TaskCounts.by_status, run_ids)

    async def complete_many(
        self,
        completions: Iterable[Completion],
        *,
        worker: str | None = None,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 0,
    ) -> BatchHandoff:
        """As ``store.tasks.complete_many`` of the sync face."""
        return await self._calls.write(
            TaskBatches,
            TaskBatches.complete_many,
            completions,
            worker=worker,
            run_id=run_id,
            lease=lease,
            limit=limit,
        )
