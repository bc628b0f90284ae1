"""Wake-ups instead of polling: triggers NOTIFY, in the writing transaction, when tasks
become claimable (planned, requeued, retried, handed back), when a held task is
cancelled, and when events are journalled.

Channels and payloads (see ``agentstore.backends.postgresql``):
``agentstore_tasks``: a run id (work may be there), or ``cancel <task id>``;
``agentstore_events``: a run id (its journal grew). In a store with a schema of its own,
the channels end in ``_<schema>`` (``agentstore.backends.listen.channel``), so that
stores in two schemas of one database do not wake each other.

Revision ID: 0005
Revises: 0004
Tree: cloud (PostgreSQL)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level where rows come in bulk (a plan, a batch of events): one notification
# per run, not one per row. Row-level with WHEN clauses elsewhere, so that the updates
# of claims, heartbeats and completions never call a function.
UPGRADE = """
CREATE FUNCTION agentstore_notify_planned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentstore_tasks{suffix}', run_id::text)
    FROM (SELECT DISTINCT run_id FROM inserted WHERE status = 'pending') AS planned;
    RETURN NULL;
END $$;

CREATE FUNCTION agentstore_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentstore_tasks{suffix}', NEW.run_id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION agentstore_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentstore_tasks{suffix}', 'cancel ' || NEW.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION agentstore_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentstore_events{suffix}', run_id::text)
    FROM (SELECT DISTINCT run_id FROM inserted) AS journalled;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_notify_planned AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION agentstore_notify_planned();

CREATE TRIGGER tasks_notify_pending AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION agentstore_notify_pending();

CREATE TRIGGER tasks_notify_cancel AFTER UPDATE OF cancel_reason ON tasks
    FOR EACH ROW WHEN (
        NEW.status = 'in_progress' AND OLD.cancel_reason IS NULL
        AND NEW.cancel_reason IS NOT NULL
    )
    EXECUTE FUNCTION agentstore_notify_cancel();

CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION agentstore_notify_events();
"""

DOWNGRADE = """
DROP TRIGGER events_notify ON events;
DROP TRIGGER tasks_notify_cancel ON tasks;
DROP TRIGGER tasks_notify_pending ON tasks;
DROP TRIGGER tasks_notify_planned ON tasks;
DROP FUNCTION agentstore_notify_events();
DROP FUNCTION agentstore_notify_cancel();
DROP FUNCTION agentstore_notify_pending();
DROP FUNCTION agentstore_notify_planned();
"""


def upgrade() -> None:
    schema = op.get_context().version_table_schema  # the store's schema, if its own
    op.execute(UPGRADE.replace("{suffix}", "" if schema is None else f"_{schema}"))


def downgrade() -> None:
    op.execute(DOWNGRADE)
