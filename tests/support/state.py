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


#: Columns two equal histories written at other times still differ in.
VOLATILE = frozenset(
    {"id", "run_id", "created_at", "updated_at", "ts", "transaction_id", "lease_expires_at"}
    | {"available_at"}
)


def dump_run(store: AgentStore, run_id: Any) -> dict[str, list[tuple[Any, ...]]]:
    """``dump`` of one run's rows, as two runs with the same history have them alike:
    without the columns in ``VOLATILE``, each task named by its title."""
    with store.engine.connect() as connection:
        tasks = Base.metadata.tables["tasks"]
        titles = {
            str(row.id): row.title
            for row in connection.execute(
                sa.select(tasks.c.id, tasks.c.title).where(tasks.c.run_id == run_id)
            )
        }

        def named(column: str, value: Any) -> Any:
            if column == "task_id":
                return titles[str(value)]
            if column == "payload" and isinstance(value, dict) and "task_id" in value:
                return {**value, "task_id": titles[value["task_id"]]}
            return value

        found = {}
        for table in Base.metadata.sorted_tables:
            if "run_id" not in table.c:
                continue
            kept = [column for column in table.c if column.name not in VOLATILE]
            rows = connection.execute(sa.select(*kept).where(table.c.run_id == run_id))
            found[table.name] = sorted(
                (tuple(named(c.name, v) for c, v in zip(kept, row, strict=True)) for row in rows),
                key=repr,
            )
        return found
