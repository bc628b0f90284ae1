"""The directory of scopes: every scope that holds executions, once, in keyset pages,
each with the time of its newest execution; hostile names are only names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore
from agentstore.cursors import encode
from agentstore.errors import ValidationError
from agentstore.models import Execution

SCOPES = ["team-a", "team-b", "a%", "a_b", "'; DROP TABLE executions; --", "Ünïcode ✓", "z"]
BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def read_all(store: AgentStore, limit: int) -> list[Any]:
    """Every scope, page by page."""
    items, after = [], None
    while True:
        page = store.executions.scopes(limit=limit, after=after)
        assert len(page.items) <= limit
        items += page.items
        if page.next_cursor is None:
            return items
        after = page.next_cursor


def test_every_scope_with_executions_is_listed_once_with_its_newest_time(
    store: AgentStore,
) -> None:
    assert store.executions.scopes().items == []
    newest = {}
    for n, scope in enumerate(SCOPES):
        for k in range(n % 3 + 1):
            execution = store.executions.create(scope, f"job {k}")
            created = BASE + timedelta(minutes=n * 10 + k)
            with store.engine.begin() as connection:
                connection.execute(
                    sa.update(Execution)
                    .where(Execution.id == execution.id)
                    .values(created_at=created)
                )
            newest[scope] = created
    for limit in (1, 2, 3, 100):
        scopes = read_all(store, limit)
        assert [s.scope_id for s in scopes] == [s.scope_id for s in read_all(store, 100)]
        assert {s.scope_id: s.latest_execution_at for s in scopes} == newest
        assert len(scopes) == len(SCOPES)
    names = [s.scope_id for s in read_all(store, 2)]
    assert names.index("team-a") < names.index("team-b") < names.index("z")


def test_a_bad_page_size_or_cursor_is_refused(store: AgentStore) -> None:
    store.executions.create("s", "x")
    for limit in (0, -1, 1001, "5"):
        with pytest.raises(ValidationError):
            store.executions.scopes(limit=limit)  # type: ignore[arg-type]
    foreign = encode("executions:created_at:desc", ["2026-01-01T00:00:00+00:00", "x"])
    for cursor in ("garbage", foreign, encode("scopes:scope_id:asc", [5])):
        with pytest.raises(ValidationError):
            store.executions.scopes(after=cursor)
