"""The fencing token has one name: ``tasks.attempt`` (was ``attempt_count``) and
``task_attempts.attempt`` (was ``attempt_number``), as in the records and parameters.

Revision ID: 0008
Revises: 0007
Tree: local (SQLite)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite renames a column in place (its constraints follow); a constraint named inside
    # the table's definition is renamed by copying the table.
    op.execute("ALTER TABLE tasks RENAME COLUMN attempt_count TO attempt")
    op.execute("ALTER TABLE task_attempts RENAME COLUMN attempt_number TO attempt")
    with op.batch_alter_table("task_attempts", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("uq_task_attempts_task_id_attempt_number", type_="unique")
        batch_op.create_unique_constraint(
            "uq_task_attempts_task_id_attempt", ["task_id", "attempt"]
        )


def downgrade() -> None:
    op.execute("ALTER TABLE task_attempts RENAME COLUMN attempt TO attempt_number")
    with op.batch_alter_table("task_attempts", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("uq_task_attempts_task_id_attempt", type_="unique")
        batch_op.create_unique_constraint(
            "uq_task_attempts_task_id_attempt_number", ["task_id", "attempt_number"]
        )
    op.execute("ALTER TABLE tasks RENAME COLUMN attempt TO attempt_count")
