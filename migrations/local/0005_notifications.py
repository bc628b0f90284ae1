"""Wake-ups instead of polling. On PostgreSQL this revision adds NOTIFY triggers; SQLite
has no server to notify (workers poll, adaptively), so here it changes nothing: the
revision exists to keep the two trees in step.

Revision ID: 0005
Revises: 0004
Tree: local (SQLite)
"""

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing on SQLite (see the module's docstring)."""


def downgrade() -> None:
    """Nothing on SQLite (see the module's docstring)."""
