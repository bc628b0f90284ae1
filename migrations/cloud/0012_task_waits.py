"""A task can wait for a person: task status and attempt status ``waiting``, and the
task's ``question``, ``answer`` and ``waits`` (its attempts that ended by asking).

Downgrade: a waiting task becomes ``blocked`` with blocker signature ``waiting`` (its
question is dropped with the column: answer it, or cancel it, before downgrading), and an
attempt that ended by asking becomes ``blocked`` with that signature; every task's
question and answer are dropped, and the attempts it waited count toward
``max_attempts`` again.

Revision ID: 0012
Revises: 0011
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def replace_checks(which: str) -> None:
    for table, statuses in (("tasks", TASK_STATUSES), ("task_attempts", ATTEMPT_STATUSES)):
        op.drop_constraint(op.f(f"ck_{table}_status"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_status"), table, statuses[which])


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("waits", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("tasks", sa.Column("question", postgresql.JSONB(), nullable=True))
    op.add_column("tasks", sa.Column("answer", postgresql.JSONB(), nullable=True))
    replace_checks("after")


def downgrade() -> None:
    for statement in UNWAIT:
        op.execute(statement)
    replace_checks("before")
    op.drop_column("tasks", "answer")
    op.drop_column("tasks", "question")
    op.drop_column("tasks", "waits")
