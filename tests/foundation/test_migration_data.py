"""Revisions that change tables keep the rows in them: upgrade and downgrade with rows in
place, on both dialects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

import agentstore
from agentstore.models import Execution, ExecutionInteraction, Run, Task, TaskAttempt
from agentstore.statuses import TaskStatus

# The revision that lets tasks wait, and the one before it; the task statuses before it.
WAITS, BEFORE_WAITS = "0012", "0011"
STATUSES_BEFORE_WAITS = [status for status in TaskStatus if status is not TaskStatus.WAITING]
# Columns renamed since (by 0008): their names before.
NAMES_BEFORE_0008 = {
    "tasks": {"attempt": "attempt_count"},
    "task_attempts": {"attempt": "attempt_number"},
}


def table_then(connection: sa.Connection, model: type) -> sa.Table:
    """The model's table as the database holds it at the current revision: the model's
    column types, under the names the database has, without the columns it lacks yet."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    present = {column["name"] for column in sa.inspect(connection).get_columns(table.name)}
    renamed = NAMES_BEFORE_0008.get(table.name, {})
    columns = []
    for column in table.c:
        copy = column._copy()
        if column.name not in present and renamed.get(column.name) in present:
            copy.name = copy.key = renamed[column.name]
        if copy.name in present:
            columns.append(copy)
    return sa.Table(table.name, sa.MetaData(), *columns)


def test_0004_keeps_tasks_in_every_status_and_puts_attempts_under_their_tasks_run(
    empty_db_url: str,
) -> None:
    config = agentstore.schema.alembic_config(empty_db_url)
    command.upgrade(config, "0003")
    engine = agentstore.create_engine(empty_db_url)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [uuid.uuid4(), uuid.uuid4()]
    tasks = {status: uuid.uuid4() for status in STATUSES_BEFORE_WAITS}
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table_then(connection, Run)),
            [{"id": r, "goal": "g", "repo_path": "/r", "status": "running"} for r in runs],
        )
        connection.execute(
            sa.insert(table_then(connection, Task)),
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
            sa.insert(table_then(connection, TaskAttempt)),
            {
                "id": uuid.uuid4(),
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
        assert set(after) == set(STATUSES_BEFORE_WAITS)
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
            for s in STATUSES_BEFORE_WAITS
        )
        command.upgrade(config, "head")
        assert len(store.tasks.list(runs[0])) == len(STATUSES_BEFORE_WAITS)


def test_0008_renames_the_fencing_token_and_keeps_its_values(empty_db_url: str) -> None:
    config = agentstore.schema.alembic_config(empty_db_url)
    command.upgrade(config, "0007")
    engine = agentstore.create_engine(empty_db_url)
    run_id, task_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table_then(connection, Run)),
            {"id": run_id, "goal": "g", "repo_path": "/r", "status": "running"},
        )
        connection.execute(
            sa.insert(table_then(connection, Task)),
            {
                "id": task_id,
                "run_id": run_id,
                "title": "t",
                "objective": "o",
                "status": "pending",
                "position": 0,
                "attempt_count": 3,
            },
        )
        connection.execute(
            sa.insert(table_then(connection, TaskAttempt)),
            [
                {
                    "id": uuid.uuid4(),
                    "run_id": run_id,
                    "task_id": task_id,
                    "attempt_number": n,
                    "status": "failed",
                    "summary": f"attempt {n}",
                    "result": {},
                }
                for n in (1, 2)
            ],
        )

    command.upgrade(config, "head")
    with agentstore.AgentStore(engine) as store:
        assert store.tasks.get(task_id).attempt == 3
        latest = store.attempts.latest(task_id)
        assert latest is not None and (latest.attempt, latest.summary) == (2, "attempt 2")
        with pytest.raises(agentstore.errors.ConflictError):
            store.attempts.add(run_id, task_id, 2, "failed", "again")

        command.downgrade(config, "0007")
        with engine.connect() as connection:
            tasks = table_then(connection, Task)
            attempts = table_then(connection, TaskAttempt)
            assert connection.execute(sa.select(tasks.c.attempt_count)).scalar_one() == 3
            numbers = connection.execute(sa.select(attempts.c.attempt_number)).scalars()
            assert sorted(numbers) == [1, 2]
        command.upgrade(config, "head")
        assert store.tasks.get(task_id).attempt == 3


def test_0011_gives_questions_deadlines_and_a_downgrade_cancels_expired_ones(
    empty_db_url: str,
) -> None:
    config = agentstore.schema.alembic_config(empty_db_url)
    command.upgrade(config, "0010")
    engine = agentstore.create_engine(empty_db_url)
    waiting, other, before = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table_then(connection, Execution)),
            [
                {
                    "scope_id": "s",
                    "id": execution_id,
                    "status": "waiting_for_interaction",
                    "code": "c",
                    "started_at": datetime(2026, 1, 1, tzinfo=UTC),
                }
                for execution_id in (waiting, other)
            ],
        )
        connection.execute(
            sa.insert(table_then(connection, ExecutionInteraction)),
            {
                "id": before,
                "scope_id": "s",
                "execution_id": waiting,
                "status": "pending",
                "kind": "form",
                "payload": {"field": "token"},
            },
        )

    command.upgrade(config, "head")
    with agentstore.AgentStore(engine) as store:
        [kept] = store.executions.list_interactions("s", waiting)
        assert (kept.id, kept.status, kept.payload) == (before, "pending", {"field": "token"})
        assert (kept.expires_at, kept.on_expiry) == (None, "continue")
        due = store.executions.request_interaction("s", other, "approve", expires_in=timedelta(0))
        assert store.executions.expire_interactions() == 1

        command.downgrade(config, "0010")
        with engine.connect() as connection:
            questions = table_then(connection, ExecutionInteraction)
            assert "expires_at" not in questions.c and "on_expiry" not in questions.c
            rows = connection.execute(sa.select(questions.c.id, questions.c.status)).all()
            assert sorted(rows) == sorted([(before, "pending"), (due.id, "cancelled")])
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.update(questions).values(status="expired"))

        command.upgrade(config, "head")
        after = store.executions.list_interactions("s", waiting)
        assert [(q.id, q.status, q.on_expiry) for q in after] == [(before, "pending", "continue")]
        assert store.executions.inbox("s").items[0].interaction == after[0]


def test_waits_let_tasks_wait_and_a_downgrade_blocks_the_waiting_ones(empty_db_url: str) -> None:
    config = agentstore.schema.alembic_config(empty_db_url)
    command.upgrade(config, BEFORE_WAITS)
    engine = agentstore.create_engine(empty_db_url)
    run_id, task_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table_then(connection, Run)),
            {"id": run_id, "goal": "g", "repo_path": "/r", "status": "running"},
        )
        connection.execute(
            sa.insert(table_then(connection, Task)),
            {
                "id": task_id,
                "run_id": run_id,
                "title": "t",
                "objective": "o",
                "status": "pending",
                "position": 0,
                "attempt": 2,
                "max_attempts": 3,
                "available_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
        )

    command.upgrade(config, WAITS)
    with agentstore.AgentStore(engine) as store:
        before = store.tasks.get(task_id)
        assert (before.waits, before.question, before.answer) == (0, None, None)
        [held] = store.tasks.claim_next("w", run_id=run_id)
        asking = store.tasks.wait(task_id, {"ok?": 1}, attempt=held.attempt)
        assert (asking.status, asking.waits) == (TaskStatus.WAITING, 1)

        command.downgrade(config, BEFORE_WAITS)
        with engine.connect() as connection:
            tasks, attempts = table_then(connection, Task), table_then(connection, TaskAttempt)
            assert "question" not in tasks.c and "waits" not in tasks.c
            task = connection.execute(sa.select(tasks.c.status, tasks.c.blocker_signature)).one()
            assert tuple(task) == ("blocked", "waiting")
            attempt = connection.execute(
                sa.select(attempts.c.attempt, attempts.c.status, attempts.c.blocker_signature)
            ).one()
            assert tuple(attempt) == (3, "blocked", "waiting")

        command.upgrade(config, WAITS)
        again = store.tasks.get(task_id)
        assert (again.status, again.blocker_signature, again.waits) == (
            TaskStatus.BLOCKED,
            "waiting",
            0,
        )
        # The new CHECK constraints take the new statuses once more.
        store.tasks.replace_pending(run_id, [agentstore.TaskDraft("t2", "o")])
        [held] = store.tasks.claim_next("w", run_id=run_id)
        assert store.tasks.wait(held.id, "ok?", attempt=1).status is TaskStatus.WAITING
        assert store.attempts.latest(held.id).status == "waiting"  # type: ignore[union-attr]
