"""Query plans for the plan tests: the statements a call runs, and what the database
plans for one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from agentstore import AgentStore

# A fresh id per row in a seed written in SQL, in each database's words.
NEW_ID = {"sqlite": "lower(hex(randomblob(16)))", "postgresql": "gen_random_uuid()"}


def statements_run_by(store: AgentStore, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL and parameters of every statement ``call`` sends."""
    seen: list[tuple[str, Any]] = []

    def remember(_conn: object, _cursor: object, sql: str, parameters: Any, *_: object) -> None:
        seen.append((sql, parameters))

    # The engine the calls run on: an AsyncAgentStore's SQL runs on its sync_engine.
    engine = getattr(store, "calls_engine", store.engine)
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    return seen


def plan_of(store: AgentStore, sql: str, parameters: Any) -> str:
    """The database's plan for ``sql`` (EXPLAIN, or SQLite's EXPLAIN QUERY PLAN)."""
    explain = "EXPLAIN" if store.backend.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"{explain} {sql}", parameters).all()
    return "\n".join(str(row[-1]) for row in rows)
