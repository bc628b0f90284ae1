"""Revisions that change tables keep the rows in them: upgrade and downgrade with rows in
place, on both dialects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

import agentstore
from agentstore.models import Run, Task, TaskAttempt
from agentstore.statuses import TaskStatus

# The columns revision 0004 adds to tasks; written before it as the tables were then.
ADDED_BY_0004 = {"available_at", "retry_delay_seconds", "retry_max_delay_seconds", "cancel_reason"}


def table_before_0004(model: type) -> sa.Table:
    columns = [c._copy() for c in model.__table__.c if c.name not in ADDED_BY_0004]  # type: ignore[attr-defined]
    return sa.Table(model.__tablename__, sa.MetaData(), *columns)  # type: ignore[attr-defined]


def test_0004_keeps_tasks_in_every_status_and_puts_attempts_under_their_tasks_run(
    empty_db_url: str,
) -> None:
    config = agentstore.schema.alembic_config(empty_db_url)
    command.upgrade(config, "0003")
    engine = agentstore.create_engine(empty_db_url)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [uuid.uuid4(), uuid.uuid4()]
    tasks = {status: uuid.uuid4() for status in TaskStatus}
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table_before_0004(Run)),
            [{"id": r, "goal": "g", "repo_path": "/r", "status": "running"} for r in runs],
        )
        connection.execute(
            sa.insert(table_before_0004(Task)),
            [
                {
                    "id": task_id,
                    "run_id": runs[0],
                    "title": status.value,
                    "objective": "o",
                    "status": status.value,
                    "position": n,
                    "attempt_count": 1,
                    "created_at": created + timedelta(minutes=n),
                    "claimed_by": "w" if status is TaskStatus.IN_PROGRESS else None,
                }
                for n, (status, task_id) in enumerate(tasks.items())
            ],
        )
        # An attempt recorded under the wrong run, as the old schema let through.
        connection.execute(
            sa.insert(table_before_0004(TaskAttempt)),
            {
                "run_id": runs[1],
                "task_id": tasks[TaskStatus.COMPLETED],
                "attempt_number": 1,
                "status": "completed",
                "summary": "s",
                "result": {},
            },
        )

    command.upgrade(config, "head")
    with agentstore.AgentStore(engine) as store:
        after = {task.status: task for task in store.tasks.list(runs[0])}
        assert set(after) == set(TaskStatus)
        assert all(task.available_at == task.created_at for task in after.values())
        attempt = store.attempts.latest(tasks[TaskStatus.COMPLETED])
        assert attempt is not None and attempt.run_id == runs[0]
        [pending] = store.tasks.claim_next("w2", run_id=runs[0])
        assert pending.id == tasks[TaskStatus.PENDING]

        command.downgrade(config, "0003")
        with engine.connect() as connection:
            rows = connection.execute(sa.select(Task.title, Task.status)).all()
        claimed = TaskStatus.PENDING.value  # claimed above: now in progress
        assert sorted(rows) == sorted(
            (s.value, TaskStatus.IN_PROGRESS.value if s.value == claimed else s.value)
            for s in TaskStatus
        )
        command.upgrade(config, "head")
        assert len(store.tasks.list(runs[0])) == len(TaskStatus)
