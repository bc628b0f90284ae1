"""How many tasks wait in each run: what the pending-tasks gauge reads when a metric
reader collects (``agentstore.telemetry.observe_pending_tasks``)."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from agentstore.models import Task
from agentstore.models.orchestrator import PENDING
from agentstore.operations import Repository, reads


class PendingTasks(Repository, aggregate="tasks"):
    """Counts of pending tasks."""

    __slots__ = ()

    @reads
    def by_run(self) -> dict[UUID, int]:
        """Pending tasks per run (a run with none is left out), counted on the index of
        pending tasks (the same predicate: PostgreSQL matches the partial index)."""
        count = sa.select(Task.run_id, sa.func.count()).where(PENDING).group_by(Task.run_id)
        return {run_id: int(n) for run_id, n in self._connection.execute(count)}
