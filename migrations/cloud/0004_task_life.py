"""A task's whole life: when it becomes available (schedules and retry backoff), its own
backoff, cancellation of a held task, and attempts tied to a task of their own run.

Revision ID: 0004
Revises: 0003
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
TIMESTAMP = sa.DateTime(timezone=True)
# An attempt recorded against another run than its task's is put under its task's run.
ATTEMPTS_UNDER_THEIR_TASKS_RUN = """
UPDATE task_attempts SET run_id = (SELECT run_id FROM tasks WHERE tasks.id = task_attempts.task_id)
WHERE run_id <> (SELECT run_id FROM tasks WHERE tasks.id = task_attempts.task_id)
"""


def upgrade() -> None:
    op.add_column("tasks", sa.Column("available_at", TIMESTAMP, nullable=True))
    op.add_column("tasks", sa.Column("retry_delay_seconds", sa.Double(), nullable=True))
    op.add_column("tasks", sa.Column("retry_max_delay_seconds", sa.Double(), nullable=True))
    op.add_column("tasks", sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.execute("UPDATE tasks SET available_at = created_at")
    op.alter_column("tasks", "available_at", nullable=False)
    op.drop_index("ix_tasks_pending_run_id_position", table_name="tasks", postgresql_where=PENDING)
    op.create_index(
        "ix_tasks_pending_run_id_position_available_at",
        "tasks",
        ["run_id", "position", "available_at"],
        unique=False,
        postgresql_where=PENDING,
    )
    op.drop_index("ix_tasks_pending_claim_order", table_name="tasks", postgresql_where=PENDING)
    op.create_index(
        "ix_tasks_pending_claim_order",
        "tasks",
        [sa.column("priority").desc(), "available_at", "position", "id"],
        unique=False,
        postgresql_where=PENDING,
    )
    op.create_unique_constraint("uq_tasks_id_run_id", "tasks", ["id", "run_id"])
    op.execute(ATTEMPTS_UNDER_THEIR_TASKS_RUN)
    op.drop_constraint("fk_task_attempts_task_id_tasks", "task_attempts", type_="foreignkey")
    op.create_foreign_key(
        "fk_task_attempts_task_id_run_id_tasks",
        "task_attempts",
        "tasks",
        ["task_id", "run_id"],
        ["id", "run_id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint("fk_task_attempts_task_id_run_id_tasks", "task_attempts", type_="foreignkey")
    op.create_foreign_key(
        "fk_task_attempts_task_id_tasks",
        "task_attempts",
        "tasks",
        ["task_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint("uq_tasks_id_run_id", "tasks", type_="unique")
    op.drop_index("ix_tasks_pending_claim_order", table_name="tasks", postgresql_where=PENDING)
    op.create_index(
        "ix_tasks_pending_claim_order",
        "tasks",
        [sa.column("priority").desc(), "created_at", "position", "id"],
        unique=False,
        postgresql_where=PENDING,
    )
    op.drop_index(
        "ix_tasks_pending_run_id_position_available_at",
        table_name="tasks",
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_tasks_pending_run_id_position",
        "tasks",
        ["run_id", "position"],
        unique=False,
        postgresql_where=PENDING,
    )
    op.drop_column("tasks", "cancel_reason")
    op.drop_column("tasks", "retry_max_delay_seconds")
    op.drop_column("tasks", "retry_delay_seconds")
    op.drop_column("tasks", "available_at")
