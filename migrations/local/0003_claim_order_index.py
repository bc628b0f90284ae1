"""Index the cross-run claim's whole order (priority descending, then age, then plan
order), so a claim reads the index's first entries instead of sorting every pending task.

Revision ID: 0003
Revises: 0002
Tree: local (SQLite)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_pending_priority_created_at", sqlite_where=PENDING)
        batch_op.create_index(
            "ix_tasks_pending_claim_order",
            [sa.column("priority").desc(), "created_at", "position", "id"],
            unique=False,
            sqlite_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_pending_claim_order", sqlite_where=PENDING)
        batch_op.create_index(
            "ix_tasks_pending_priority_created_at",
            ["priority", "created_at"],
            unique=False,
            sqlite_where=PENDING,
        )
