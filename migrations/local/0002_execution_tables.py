"""Add execution history: executions, their interactions and tool calls, scoped per tenant.

Revision ID: 0002
Revises: 0001
Tree: local (SQLite)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Column types as this tree's database stores them (frozen here, not imported from models).
JSON = sa.JSON()
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("scope_id", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("logs", JSON, nullable=True),
        sa.Column("trigger_kind", sa.String(length=64), nullable=True),
        sa.Column("trigger_meta", JSON, nullable=True),
        sa.Column("tool_call_count", sa.Integer(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'waiting_for_interaction', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_executions_status"),
        ),
        sa.PrimaryKeyConstraint("scope_id", "id", name=op.f("pk_executions")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index("ix_executions_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_executions_scope_id_created_at_id", ["scope_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_executions_scope_id_duration_ms_id", ["scope_id", "duration_ms", "id"], unique=False
        )
        batch_op.create_index(
            "ix_executions_scope_id_status_created_at",
            ["scope_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_executions_scope_id_trigger_kind", ["scope_id", "trigger_kind"], unique=False
        )

    op.create_table(
        "execution_interactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope_id", sa.String(length=255), nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("response", JSON, nullable=True),
        sa.Column("response_private", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'resolved', 'cancelled')",
            name=op.f("ck_execution_interactions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scope_id", "execution_id"],
            ["executions.scope_id", "executions.id"],
            name=op.f("fk_execution_interactions_scope_id_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_interactions")),
    )
    with op.batch_alter_table("execution_interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_execution_interactions_scope_id_execution_id_created_at",
            ["scope_id", "execution_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_execution_interactions_scope_id_status", ["scope_id", "status"], unique=False
        )

    op.create_table(
        "execution_tool_calls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope_id", sa.String(length=255), nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tool_path", sa.String(length=512), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("args", JSON, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')",
            name=op.f("ck_execution_tool_calls_status"),
        ),
        sa.ForeignKeyConstraint(
            ["scope_id", "execution_id"],
            ["executions.scope_id", "executions.id"],
            name=op.f("fk_execution_tool_calls_scope_id_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_tool_calls")),
    )
    with op.batch_alter_table("execution_tool_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_execution_tool_calls_scope_id_execution_id_started_at",
            ["scope_id", "execution_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_execution_tool_calls_scope_id_tool_path", ["scope_id", "tool_path"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("execution_tool_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_tool_calls_scope_id_tool_path")
        batch_op.drop_index("ix_execution_tool_calls_scope_id_execution_id_started_at")

    op.drop_table("execution_tool_calls")
    with op.batch_alter_table("execution_interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_interactions_scope_id_status")
        batch_op.drop_index("ix_execution_interactions_scope_id_execution_id_created_at")

    op.drop_table("execution_interactions")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_scope_id_trigger_kind")
        batch_op.drop_index("ix_executions_scope_id_status_created_at")
        batch_op.drop_index("ix_executions_scope_id_duration_ms_id")
        batch_op.drop_index("ix_executions_scope_id_created_at_id")
        batch_op.drop_index("ix_executions_created_at")

    op.drop_table("executions")
