"""How many tasks each run has in each status: what a runs table shows beside each run,
counted by the database on the index of tasks by run and status (no task is loaded)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.errors import ValidationError
from agentstore.models import Task
from agentstore.operations import Repository, reads
from agentstore.statuses import TaskStatus
from agentstore.validation import Id

#: Runs counted in one call at most (a page of runs is far fewer).
MAX_RUNS = 500


class TaskCounts(Repository, aggregate="tasks"):
    """The operation behind ``store.tasks.counts`` (``task_extras``)."""

    __slots__ = ()

    @reads
    def by_status(self, run_ids: Iterable[Id]) -> dict[UUID, dict[TaskStatus, int]]:
        """As ``store.tasks.counts``."""
        wanted = [
            validation.identifier(i, "run_ids") for i in validation.sequence(run_ids, "run_ids")
        ]
        if len(wanted) > MAX_RUNS:
            raise ValidationError(f"run_ids: at most {MAX_RUNS} runs at once, got {len(wanted)}")
        counts = {run_id: dict.fromkeys(TaskStatus, 0) for run_id in wanted}
        if not wanted:
            return counts
        statement = (
            sa.select(Task.run_id, Task.status, sa.func.count())
            .where(Task.run_id.in_(set(wanted)))
            .group_by(Task.run_id, Task.status)
        )
        for run_id, status, count in self._connection.execute(statement):
            counts[run_id][TaskStatus(status)] = int(count)
        return counts
