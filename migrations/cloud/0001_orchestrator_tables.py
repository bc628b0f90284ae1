"""Create the orchestrator tables: runs, agent states, tasks, attempts and the run journal.

Revision ID: 0001
Revises:
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Column types as this tree's database stores them (frozen here, not imported from models).
JSON = postgresql.JSONB()
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("repo_path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("cycle_count", sa.Integer(), nullable=False),
        sa.Column("replan_count", sa.Integer(), nullable=False),
        sa.Column("current_task_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('planning', 'running', 'paused', 'blocked', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_runs_status_created_at_id", "runs", ["status", "created_at", "id"], unique=False
    )
    op.create_table(
        "agent_states",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("rotation_count", sa.Integer(), nullable=False),
        sa.Column("last_prompt_path", sa.Text(), nullable=True),
        sa.Column("last_response_path", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_agent_states_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "role", name=op.f("pk_agent_states")),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("acceptance_criteria", JSON, nullable=False),
        sa.Column("verification_steps", JSON, nullable=False),
        sa.Column("allowed_paths", JSON, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("implementation_summary", sa.Text(), nullable=True),
        sa.Column("blocker_signature", sa.String(length=255), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'blocked', 'abandoned')",
            name=op.f("ck_tasks_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index(
        "ix_tasks_in_progress_lease_expires_at",
        "tasks",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.create_index(
        "ix_tasks_pending_priority_created_at",
        "tasks",
        ["priority", "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_tasks_pending_run_id_position",
        "tasks",
        ["run_id", "position"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_tasks_run_id_status_position", "tasks", ["run_id", "status", "position"], unique=False
    )
    op.create_table(
        "task_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("blocker_signature", sa.String(length=255), nullable=True),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('completed', 'blocked', 'failed', 'abandoned')",
            name=op.f("ck_task_attempts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_task_attempts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_attempts_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_attempts")),
        sa.UniqueConstraint(
            "task_id", "attempt_number", name=op.f("uq_task_attempts_task_id_attempt_number")
        ),
    )
    op.create_index(
        "ix_task_attempts_run_id_created_at",
        "task_attempts",
        ["run_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("ts", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_run_id_id", "events", ["run_id", "id"], unique=False)
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_artifacts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
    )
    op.create_index(
        "ix_artifacts_run_id_created_at", "artifacts", ["run_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_artifacts_run_id_role_created_at",
        "artifacts",
        ["run_id", "role", "created_at"],
        unique=False,
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "verdict IN ('approved', 'rejected', 'changes_requested')",
            name=op.f("ck_approvals_verdict"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_approvals_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index(
        "ix_approvals_run_id_created_at", "approvals", ["run_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_approvals_run_id_source_created_at",
        "approvals",
        ["run_id", "source", "created_at"],
        unique=False,
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('planning', 'running', 'paused', 'blocked', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_checkpoints_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_checkpoints_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    op.create_index(
        "ix_checkpoints_run_id_created_at", "checkpoints", ["run_id", "created_at"], unique=False
    )
    # runs and tasks refer to each other: the run's pointer is added once both exist.
    op.create_foreign_key(
        op.f("fk_runs_current_task_id_tasks"),
        "runs",
        "tasks",
        ["current_task_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_runs_current_task_id_tasks"), "runs", type_="foreignkey")
    op.drop_index("ix_checkpoints_run_id_created_at", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.drop_index("ix_approvals_run_id_source_created_at", table_name="approvals")
    op.drop_index("ix_approvals_run_id_created_at", table_name="approvals")
    op.drop_table("approvals")
    op.drop_index("ix_artifacts_run_id_role_created_at", table_name="artifacts")
    op.drop_index("ix_artifacts_run_id_created_at", table_name="artifacts")
    op.drop_table("artifacts")
    op.drop_index("ix_events_run_id_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_task_attempts_run_id_created_at", table_name="task_attempts")
    op.drop_table("task_attempts")
    op.drop_index("ix_tasks_run_id_status_position", table_name="tasks")
    op.drop_index(
        "ix_tasks_pending_run_id_position",
        table_name="tasks",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_tasks_pending_priority_created_at",
        table_name="tasks",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_tasks_in_progress_lease_expires_at",
        table_name="tasks",
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.drop_table("tasks")
    op.drop_table("agent_states")
    op.drop_index("ix_runs_status_created_at_id", table_name="runs")
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.drop_table("runs")
