"""A task's whole life: when it becomes available (schedules and retry backoff), its own
backoff, cancellation of a held task, and attempts tied to a task of their own run.

Revision ID: 0004
Revises: 0003
Tree: local (SQLite)
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
    # Indexes are dropped and made outside the batches: a batch that copies the table
    # recreates the indexes from reflection, which loses a column's DESC.
    op.drop_index("ix_tasks_pending_run_id_position", table_name="tasks", sqlite_where=PENDING)
    op.drop_index("ix_tasks_pending_claim_order", table_name="tasks", sqlite_where=PENDING)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("available_at", TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("retry_delay_seconds", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("retry_max_delay_seconds", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.execute("UPDATE tasks SET available_at = created_at")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("available_at", existing_type=TIMESTAMP, nullable=False)
        batch_op.create_unique_constraint("uq_tasks_id_run_id", ["id", "run_id"])
    op.create_index(
        "ix_tasks_pending_run_id_position_available_at",
        "tasks",
        ["run_id", "position", "available_at"],
        unique=False,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_tasks_pending_claim_order",
        "tasks",
        [sa.column("priority").desc(), "available_at", "position", "id"],
        unique=False,
        sqlite_where=PENDING,
    )
    op.execute(ATTEMPTS_UNDER_THEIR_TASKS_RUN)
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_task_attempts_task_id_tasks", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_task_attempts_task_id_run_id_tasks",
            "tasks",
            ["task_id", "run_id"],
            ["id", "run_id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_task_attempts_task_id_run_id_tasks", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_task_attempts_task_id_tasks", "tasks", ["task_id"], ["id"], ondelete="CASCADE"
        )
    op.drop_index("ix_tasks_pending_claim_order", table_name="tasks", sqlite_where=PENDING)
    op.drop_index(
        "ix_tasks_pending_run_id_position_available_at", table_name="tasks", sqlite_where=PENDING
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tasks_id_run_id", type_="unique")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("retry_max_delay_seconds")
        batch_op.drop_column("retry_delay_seconds")
        batch_op.drop_column("available_at")
    op.create_index(
        "ix_tasks_pending_claim_order",
        "tasks",
        [sa.column("priority").desc(), "created_at", "position", "id"],
        unique=False,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_tasks_pending_run_id_position",
        "tasks",
        ["run_id", "position"],
        unique=False,
        sqlite_where=PENDING,
    )
