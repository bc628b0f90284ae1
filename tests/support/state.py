"""Reading a whole database, to assert that a refused call changed nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from agentstore.models import Base
from agentstore.store import AgentStore


def dump(store: AgentStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every agentstore table, in a stable order."""
    with store.engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(sa.select(table))), key=repr
            )
            for table in Base.metadata.sorted_tables
        }
