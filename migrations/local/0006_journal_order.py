"""Followers order a run's journal by (transaction id, id) instead of writers taking turns
on a per-run lock: each event stores its writing transaction's id (0 on SQLite, where one
writer at a time commits events in id order; existing events are settled: 0 too).

Revision ID: 0006
Revises: 0005
Tree: local (SQLite)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("transaction_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(
        "ix_events_run_id_transaction_id_id",
        "events",
        ["run_id", "transaction_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_run_id_transaction_id_id", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("transaction_id")
