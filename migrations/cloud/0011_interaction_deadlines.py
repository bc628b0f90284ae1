"""Interaction deadlines: ``expires_at`` and ``on_expiry`` ('continue' or 'fail'), the
status ``expired``, and the indexes of expiry and of the operators' inbox. A downgrade
turns expired interactions into cancelled ones (closed unanswered, which the older schema
can say) and drops every deadline (pending interactions then wait without one).

Revision ID: 0011
Revises: 0010
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "execution_interactions"
PENDING = sa.text("status = 'pending'")
TIMESTAMP = sa.DateTime(timezone=True)
STATUSES_BEFORE = "status IN ('pending', 'resolved', 'cancelled')"
STATUSES = "status IN ('pending', 'resolved', 'cancelled', 'expired')"
ON_EXPIRY = "on_expiry IN ('continue', 'fail')"
# (name, columns) of the partial indexes over pending interactions.
INDEXES = [
    ("ix_execution_interactions_pending_expires_at", ["expires_at"]),
    ("ix_execution_interactions_pending_scope_id_expires_at", ["scope_id", "expires_at"]),
    ("ix_execution_interactions_pending_created_at_id", ["created_at", "id"]),
    (
        "ix_execution_interactions_pending_scope_id_created_at_id",
        ["scope_id", "created_at", "id"],
    ),
]


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("expires_at", TIMESTAMP, nullable=True))
    op.add_column(
        TABLE,
        sa.Column(
            "on_expiry", sa.String(length=16), server_default=sa.text("'continue'"), nullable=False
        ),
    )
    op.drop_constraint(op.f("ck_execution_interactions_status"), TABLE, type_="check")
    op.create_check_constraint(op.f("ck_execution_interactions_status"), TABLE, STATUSES)
    op.create_check_constraint(op.f("ck_execution_interactions_on_expiry"), TABLE, ON_EXPIRY)
    for name, columns in INDEXES:
        op.create_index(name, TABLE, columns, unique=False, postgresql_where=PENDING)


def downgrade() -> None:
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=TABLE, postgresql_where=PENDING)
    op.execute(f"UPDATE {TABLE} SET status = 'cancelled' WHERE status = 'expired'")
    op.drop_constraint(op.f("ck_execution_interactions_on_expiry"), TABLE, type_="check")
    op.drop_constraint(op.f("ck_execution_interactions_status"), TABLE, type_="check")
    op.create_check_constraint(op.f("ck_execution_interactions_status"), TABLE, STATUSES_BEFORE)
    op.drop_column(TABLE, "on_expiry")
    op.drop_column(TABLE, "expires_at")
