"""The scopes that hold executions: a directory of tenants for operators and dashboards,
read by skipping through the ``(scope_id, created_at, id)`` index one scope at a time,
so that its cost grows with the scopes listed, not with the executions stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agentstore import cursors, validation
from agentstore.models import Execution
from agentstore.operations import Repository, reads

SCOPES_ORDERING = "scopes:scope_id:asc"
DEFAULT_SCOPES_PAGE, MAX_SCOPES_PAGE = 100, 1000


@dataclass(frozen=True, slots=True)
class ScopeRecord:
    """A scope with executions; ``latest_execution_at``: when its newest one was created."""

    scope_id: str
    latest_execution_at: datetime


@dataclass(frozen=True, slots=True)
class ScopePage:
    """One page of scopes in ``scope_id`` order; pass ``next_cursor`` back for the next
    (None: the end)."""

    items: list[ScopeRecord]
    next_cursor: str | None


class ExecutionScopes(Repository, aggregate="executions"):
    """The pages of ``store.executions.scopes``."""

    __slots__ = ()

    @reads
    def page(self, limit: int, after: str | None) -> ScopePage:
        """Up to ``limit`` scopes after the cursor ``after``, in ``scope_id`` order."""
        limit = validation.positive_int(limit, "limit", maximum=MAX_SCOPES_PAGE)
        start = None
        if after is not None:
            [start] = cursors.decode(after, SCOPES_ORDERING, 1)
            start = validation.text(start, Execution.scope_id)
        found = self._connection.execute(_scopes_after(start, limit + 1)).all()
        items = [ScopeRecord(row.scope_id, row.latest_execution_at) for row in found]
        if len(items) <= limit:
            return ScopePage(items, None)
        items = items[:limit]
        return ScopePage(items, cursors.encode(SCOPES_ORDERING, [items[-1].scope_id]))


def _next_scope(after: Any) -> sa.ScalarSelect[Any]:
    """The first scope above ``after`` (NULL: none): one step down the index."""
    statement = sa.select(Execution.scope_id).order_by(Execution.scope_id).limit(1)
    if after is not None:
        statement = statement.where(Execution.scope_id > after)
    return statement.scalar_subquery()


def _scopes_after(start: str | None, count: int) -> sa.Select[Any]:
    """``count`` scopes above ``start``, each with its newest execution's time: a
    recursive walk (a loose index scan), which neither database plans by itself."""
    # The step counter starts as an inline 1: PostgreSQL wants it typed as n + 1 is.
    first = sa.select(_next_scope(start).label("scope_id"), sa.literal_column("1").label("n"))
    walk = first.cte("scopes", recursive=True)
    walk = walk.union_all(
        sa.select(_next_scope(walk.c.scope_id), walk.c.n + 1).where(
            walk.c.scope_id.is_not(None), walk.c.n < count
        )
    )
    newest = (
        sa.select(Execution.created_at)
        .where(Execution.scope_id == walk.c.scope_id)
        .order_by(Execution.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.select(walk.c.scope_id, newest.label("latest_execution_at"))
        .where(walk.c.scope_id.is_not(None))
        .order_by(walk.c.scope_id)
    )
