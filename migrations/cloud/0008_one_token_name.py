"""The fencing token has one name: ``tasks.attempt`` (was ``attempt_count``) and
``task_attempts.attempt`` (was ``attempt_number``), as in the records and parameters.

Revision ID: 0008
Revises: 0007
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("tasks", "attempt_count", new_column_name="attempt")
    op.alter_column("task_attempts", "attempt_number", new_column_name="attempt")
    # Renaming the constraint renames its index too.
    op.execute(
        "ALTER TABLE task_attempts RENAME CONSTRAINT "
        "uq_task_attempts_task_id_attempt_number TO uq_task_attempts_task_id_attempt"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE task_attempts RENAME CONSTRAINT "
        "uq_task_attempts_task_id_attempt TO uq_task_attempts_task_id_attempt_number"
    )
    op.alter_column("task_attempts", "attempt", new_column_name="attempt_number")
    op.alter_column("tasks", "attempt", new_column_name="attempt_count")
