"""A retention sweep finds the runs that ended by when they last changed.

Revision ID: 0009
Revises: 0008
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_status_updated_at", "runs", ["status", "updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_status_updated_at", table_name="runs")
