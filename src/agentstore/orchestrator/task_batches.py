"""Completions in batches: a worker that finished several tasks settles them all, and
takes its next tasks, in one transaction (``store.tasks.complete_many``).

Each completion is fenced, recorded and journalled exactly as ``complete`` does it, but
the statements are one per table, not one per task: one UPDATE ends every claim, one
INSERT records the attempts, one the events (where the database runs data-modifying
CTEs, the three and the next claim are one statement: ``task_steps``). On SQLite a page
the batch touches again and again is written once, in one commit.

A completion whose claim was lost is reported (``BatchHandoff.stale``), never raised
for the batch: the other completions stand. A completion ``complete`` would refuse for
any other reason (an unknown task; a task the caller ended otherwise under that
attempt) is a mistake of the caller's: the call raises it and writes nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from agentstore import validation
from agentstore.backends import schema_of
from agentstore.driver_statements import run_on_driver
from agentstore.errors import StaleClaimError, ValidationError
from agentstore.models import Task
from agentstore.models.base import utcnow
from agentstore.operations import writes
from agentstore.orchestrator.common import insert_events
from agentstore.orchestrator.task_records import TaskRecord
from agentstore.orchestrator.task_statements import MAX_BATCH, close_many, record_attempts
from agentstore.orchestrator.task_steps import CLOSED, steps
from agentstore.orchestrator.tasks import TaskRepository
from agentstore.statuses import AttemptStatus
from agentstore.types import uuid7
from agentstore.validation import Id


@dataclass(frozen=True, slots=True)
class Completion:
    """One task a worker finished, for ``complete_many``: as the arguments of
    ``complete`` (``attempt``, the fencing token from the claim; ``result``, any JSON
    value, recorded with the attempt)."""

    task_id: Id
    summary: str
    attempt: int
    result: Any = None


@dataclass(frozen=True, slots=True)
class BatchHandoff:
    """What ``complete_many`` did, in the order the completions were given: the tasks
    completed (including those an earlier call with the same completion completed: a
    retry after a lost reply), the ids of the tasks whose claim was lost (their
    completion discarded: another worker's result stands, or the task was requeued or
    abandoned), and the tasks claimed next, in claim order."""

    completed: builtins.list[TaskRecord]
    stale: builtins.list[UUID]
    claimed: builtins.list[TaskRecord]


class TaskBatches(TaskRepository):
    """The operation behind ``store.tasks.complete_many`` (``task_extras``)."""

    __slots__ = ()

    @writes
    def complete_many(
        self,
        completions: Iterable[Completion],
        *,
        worker: str | None = None,
        run_id: Id | None = None,
        lease: timedelta = timedelta(minutes=5),
        limit: int = 0,
    ) -> BatchHandoff:
        """As ``store.tasks.complete_many`` (``task_extras.TasksExtras.complete_many``)."""
        items = _checked(completions)
        validation.positive_int(limit, "limit", minimum=0, maximum=1000)
        validation.duration(lease, "lease")
        run_id = validation.optional_identifier(run_id, "run_id")
        if limit and worker is None:
            raise ValidationError("a claim (limit > 0) needs the claiming worker's name")
        claimer = "" if worker is None else validation.text(worker, Task.claimed_by)
        one_statement = steps(self._backend, schema_of(self._connection))
        if one_statement is not None and items:
            arrays = {
                "ids": [item["task_id"] for item in items],
                "attempts": [item["attempt"] for item in items],
                "summaries": [item["summary"] for item in items],
                "results": [item["result"] for item in items],
            }
            if not limit:
                closed = self._step(one_statement.close_many, arrays)[CLOSED]
                return BatchHandoff(*self._sorted_out(items, closed), [])
            params = self._claim_parameters(claimer, run_id, lease, limit)
            parts = self._step(one_statement.close_many_and_claim(run_id), {**params, **arrays})
            claimed = self._claimed(parts, params)
            return BatchHandoff(*self._sorted_out(items, parts[CLOSED]), claimed)
        completed, stale = self._sorted_out(items, self._close_many(items) if items else [])
        if not limit:
            return BatchHandoff(completed, stale, [])
        claimed = self.claim_next(claimer, run_id=run_id, lease=lease, limit=limit)
        return BatchHandoff(completed, stale, claimed)

    def _close_many(self, items: builtins.list[dict[str, Any]]) -> builtins.list[TaskRecord]:
        """End the claims still current, then record their attempts and journal them:
        three statements for the whole batch."""
        params: dict[str, Any] = {"now": utcnow()}
        for n, item in enumerate(items):
            params[f"id_{n}"] = item["task_id"]
            params[f"attempt_{n}"] = item["attempt"]
            params[f"summary_{n}"] = item["summary"]
        closed = TaskRecord.from_driver_rows(
            *run_on_driver(self._connection, close_many(len(items)), params)
        )
        if not closed:
            return closed
        results = {item["task_id"]: item["result"] for item in items}
        record_attempts(self._backend).execute(
            self._connection,
            [
                {
                    "id": uuid7(),
                    "run_id": task.run_id,
                    "task_id": task.id,
                    "attempt": task.attempt,
                    "status": AttemptStatus.COMPLETED.value,
                    "summary": task.implementation_summary,
                    "blocker_signature": None,
                    "result": results[task.id],
                }
                for task in closed
            ],
            {"created_at": utcnow()},
        )
        insert_events(
            self._connection,
            self._backend,
            [
                {
                    "run_id": task.run_id,
                    "source": "system",
                    "kind": "task_completed",
                    "message": "Task completed.",
                    "payload": {"task_id": str(task.id), "attempt": task.attempt},
                }
                for task in closed
            ],
        )
        return closed

    def _sorted_out(
        self, items: builtins.list[dict[str, Any]], closed: builtins.list[TaskRecord]
    ) -> tuple[builtins.list[TaskRecord], builtins.list[UUID]]:
        """The completed tasks and the stale ids, in the order given. A task the batch
        did not close is explained as ``complete`` explains it: a retry of the same
        completion (the task as it is), a lost claim (stale), or an error raised."""
        by_id = {task.id: task for task in closed}
        completed: builtins.list[TaskRecord] = []
        stale: builtins.list[UUID] = []
        for item in items:
            task_id, attempt = item["task_id"], item["attempt"]
            if task_id in by_id:
                completed.append(by_id[task_id])
                continue
            retry_of = (AttemptStatus.COMPLETED, item["summary"], None)
            try:
                completed.append(self._explain(task_id, attempt, "complete", retry_of))
            except StaleClaimError:
                stale.append(task_id)
        return completed, stale


def _checked(completions: Any) -> builtins.list[dict[str, Any]]:
    """Each completion checked (as ``complete`` checks its arguments), before anything
    is written. Raises ``ValidationError``."""
    given = validation.sequence(completions, "completions")
    if len(given) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} completions at once, got {len(given)}")
    items = []
    for completion in given:
        if not isinstance(completion, Completion):
            raise ValidationError(f"expected a Completion, got {type(completion).__name__}")
        result = completion.result
        items.append(
            {
                "task_id": validation.identifier(completion.task_id, "task_id"),
                "summary": validation.text(completion.summary, Task.implementation_summary),
                "attempt": validation.positive_int(completion.attempt, "attempt"),
                "result": validation.json_value({} if result is None else result, "result"),
            }
        )
    ids = [item["task_id"] for item in items]
    if len(set(ids)) < len(ids):
        raise ValidationError("a task is completed once: completions name a task twice")
    return items
