"""A task can wait for a person: task status and attempt status ``waiting``, and the
task's ``question``, ``answer`` and ``waits`` (its attempts that ended by asking).

Downgrade: a waiting task becomes ``blocked`` with blocker signature ``waiting`` (its
question is dropped with the column: answer it, or cancel it, before downgrading), and an
attempt that ended by asking becomes ``blocked`` with that signature; every task's
question and answer are dropped, and the attempts it waited count toward
``max_attempts`` again.

Revision ID: 0012
Revises: 0011
Tree: local (SQLite)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
# The CHECK constraints, written out: a revision never follows the models' later changes.
TASK_STATUSES = {
    "before": "status IN ('pending', 'in_progress', 'completed', 'blocked', 'abandoned')",
    "after": (
        "status IN ('pending', 'in_progress', 'waiting', 'completed', 'blocked', 'abandoned')"
    ),
}
ATTEMPT_STATUSES = {
    "before": "status IN ('completed', 'blocked', 'failed', 'abandoned')",
    "after": "status IN ('completed', 'blocked', 'failed', 'abandoned', 'waiting')",
}
UNWAIT = [
    "UPDATE tasks SET status = 'blocked', blocker_signature = 'waiting' WHERE status = 'waiting'",
    "UPDATE task_attempts SET status = 'blocked', blocker_signature = 'waiting' "
    "WHERE status = 'waiting'",
]


def drop_claim_order_index() -> None:
    # Dropped and made outside the batch: a batch that copies the table recreates the
    # indexes from reflection, which loses a column's DESC.
    op.drop_index("ix_tasks_pending_claim_order", table_name="tasks", sqlite_where=PENDING)


def create_claim_order_index() -> None:
    op.create_index(
        "ix_tasks_pending_claim_order",
        "tasks",
        [sa.column("priority").desc(), "available_at", "position", "id"],
        unique=False,
        sqlite_where=PENDING,
    )


def replace_check(batch_op: BatchOperations, statuses: str, table: str) -> None:
    batch_op.drop_constraint(op.f(f"ck_{table}_status"), type_="check")
    batch_op.create_check_constraint(op.f(f"ck_{table}_status"), sa.text(statuses))


def upgrade() -> None:
    drop_claim_order_index()
    with op.batch_alter_table("tasks", schema=None, recreate="always") as batch_op:
        batch_op.add_column(
            sa.Column("waits", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("question", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("answer", sa.JSON(), nullable=True))
        replace_check(batch_op, TASK_STATUSES["after"], "tasks")
    create_claim_order_index()
    with op.batch_alter_table("task_attempts", schema=None, recreate="always") as batch_op:
        replace_check(batch_op, ATTEMPT_STATUSES["after"], "task_attempts")


def downgrade() -> None:
    for statement in UNWAIT:
        op.execute(statement)
    with op.batch_alter_table("task_attempts", schema=None, recreate="always") as batch_op:
        replace_check(batch_op, ATTEMPT_STATUSES["before"], "task_attempts")
    drop_claim_order_index()
    with op.batch_alter_table("tasks", schema=None, recreate="always") as batch_op:
        replace_check(batch_op, TASK_STATUSES["before"], "tasks")
        batch_op.drop_column("answer")
        batch_op.drop_column("question")
        batch_op.drop_column("waits")
    create_claim_order_index()
