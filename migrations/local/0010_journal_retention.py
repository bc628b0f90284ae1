"""Journal retention finds events and checkpoints by age across all runs.

Revision ID: 0010
Revises: 0009
Tree: local (SQLite)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_ts", "events", ["ts"], unique=False)
    op.create_index("ix_checkpoints_created_at", "checkpoints", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_checkpoints_created_at", table_name="checkpoints")
    op.drop_index("ix_events_ts", table_name="events")
