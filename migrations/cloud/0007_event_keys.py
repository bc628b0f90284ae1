"""An event may carry its writer's idempotency key, unique within its run, so that an
append made again after its reply was lost is recorded once.

Revision ID: 0007
Revises: 0006
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.create_index(
        "ux_events_run_id_idempotency_key",
        "events",
        ["run_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_events_run_id_idempotency_key", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("idempotency_key")
