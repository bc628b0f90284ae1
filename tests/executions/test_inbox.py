"""The operators' inbox: every pending interaction of a scope, or of all scopes, oldest
first with its execution, in keyset pages; never one that is decided, past its
deadline, or of an execution that has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, ExecutionQuery
from agentstore.errors import ValidationError
from agentstore.models import ExecutionInteraction
from tests.orchestrator.test_tasks import refused


def read_all(store: AgentStore, scope_id: str | None, limit: int) -> list[Any]:
    """Every item of the inbox, page by page."""
    items, after = [], None
    while True:
        page = store.executions.inbox(scope_id, limit=limit, after=after)
        assert len(page.items) <= limit
        items += page.items
        if page.next_cursor is None:
            return items
        after = page.next_cursor


def test_the_inbox_pages_through_every_pending_question_oldest_first(store: AgentStore) -> None:
    asked: dict[str, list[Any]] = {"a": [], "b": []}
    for n in range(7):
        scope = "a" if n % 3 else "b"
        execution = store.executions.create(scope, f"job {n}")
        asked[scope].append(
            store.executions.request_interaction(scope, execution.id, "form", purpose=f"q{n}")
        )
    # Equal creation times, so the id breaks the tie across a page boundary.
    with store.engine.begin() as connection:
        connection.execute(
            sa.update(ExecutionInteraction).values(created_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
    everyone = sorted(asked["a"] + asked["b"], key=lambda q: q.id)
    for limit in (1, 2, 7, 50):
        items = read_all(store, None, limit)
        assert [item.interaction.id for item in items] == [q.id for q in everyone]
        assert all(item.execution.id == item.interaction.execution_id for item in items)
        assert all(item.execution.status == "waiting_for_interaction" for item in items)
    only_a = read_all(store, "a", 2)
    assert [item.interaction.id for item in only_a] == sorted(q.id for q in asked["a"])
    assert {item.execution.scope_id for item in only_a} == {"a"}
    assert store.executions.inbox("nobody").items == []


def test_the_inbox_lists_only_questions_someone_can_still_answer(store: AgentStore) -> None:
    def question(**arguments: Any) -> Any:
        execution = store.executions.create("s", "x")
        return store.executions.request_interaction("s", execution.id, "form", **arguments)

    open_one = question(expires_in=timedelta(hours=1))
    answered = question()
    store.executions.resolve_interaction("s", answered.id, {"ok": True})
    cancelled = question()
    store.executions.resolve_interaction("s", cancelled.id, cancelled=True)
    question(expires_in=timedelta(0))  # past its deadline
    ended = question()
    store.executions.finish("s", ended.execution_id, "cancelled")
    # Its execution has another question past its deadline, which fails it.
    execution = store.executions.create("s", "x")
    store.executions.request_interaction(
        "s", execution.id, "approve", expires_in=timedelta(0), on_expiry="fail"
    )
    store.executions.request_interaction("s", execution.id, "form")
    page = store.executions.inbox("s")
    assert [item.interaction.id for item in page.items] == [open_one.id]
    assert page.next_cursor is None
    assert store.executions.get("s", execution.id).execution.status == "failed"


@pytest.mark.parametrize(
    "arguments",
    [
        {"limit": 0},
        {"limit": 10_000},
        {"after": "garbage"},
        {"after": 5},
        {"scope_id": ""},
    ],
    ids=repr,
)
def test_a_bad_page_is_refused(store: AgentStore, arguments: dict[str, Any]) -> None:
    refused(store, ValidationError, lambda: store.executions.inbox(**arguments))


def test_a_cursor_of_another_listing_is_refused(store: AgentStore) -> None:
    for n in range(3):
        store.executions.create("s", f"x{n}")
    cursor = store.executions.list("s", ExecutionQuery(limit=1)).next_cursor
    assert cursor is not None
    refused(store, ValidationError, lambda: store.executions.inbox("s", after=cursor))
