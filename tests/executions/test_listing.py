"""Listing: every filter in SQL, both sorts in both directions paged by cursor, checked
against a plain Python model of the same data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstore import AgentStore, ExecutionQuery
from agentstore.errors import ValidationError
from agentstore.statuses import ExecutionStatus
from tests.executions.conftest import BASE_TIME, TOOLS, TRIGGERS, ModelExecution
from tests.support.databases import DIALECTS

# SQLite and PostgreSQL only: PgBouncer passes listing queries through as they are, and the
# pooled paths (transactions, autocommit steps, retries) are held by the other suites.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)

SEARCHES = ["a", "100%", "_", "\\", "'", "ü", "ÜNÏ", "PRINT", "#1"]
TIMES = [BASE_TIME + timedelta(minutes=m) for m in (0, 1, 5, 30, 90, 600)]


def model_matches(item: ModelExecution, query: ExecutionQuery) -> bool:
    def tool_matches(path: str, pattern: str) -> bool:
        if pattern.endswith(".*"):
            return path == pattern[:-2] or path.startswith(pattern[:-2] + ".")
        return path == pattern

    trigger = item.trigger_kind or "unknown"
    return (
        (not query.statuses or item.status in query.statuses)
        and (not query.triggers or trigger in query.triggers)
        and (not query.tools or any(tool_matches(t, p) for t in item.tools for p in query.tools))
        and (query.created_from is None or item.created_at >= query.created_from)
        and (query.created_to is None or item.created_at <= query.created_to)
        and (query.after is None or item.created_at > query.after)
        and (query.code_contains is None or query.code_contains.lower() in item.code.lower())
        and (query.had_interaction is None or (item.interactions > 0) == query.had_interaction)
    )


def model_order(items: list[ModelExecution], query: ExecutionQuery) -> list[uuid.UUID]:
    reverse = query.direction == "desc"
    if query.sort == "created_at":
        ordered = sorted(items, key=lambda i: (i.created_at, i.id), reverse=reverse)
    else:
        timed = sorted(
            (i for i in items if i.duration_ms is not None),
            key=lambda i: (i.duration_ms, i.id),
            reverse=reverse,
        )
        untimed = sorted(
            (i for i in items if i.duration_ms is None), key=lambda i: i.id, reverse=reverse
        )
        ordered = timed + untimed  # no duration yet: last in both directions
    return [i.id for i in ordered]


def page_through(store: AgentStore, query: ExecutionQuery) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor = None
    for _ in range(1000):
        page = store.executions.list("team-a", _with(query, cursor=cursor))
        assert len(page.items) <= query.limit
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("paging never ended")


def _with(query: ExecutionQuery, **changes: Any) -> ExecutionQuery:
    values = {name: getattr(query, name) for name in query.__dataclass_fields__}
    values.update(changes)
    return ExecutionQuery(**values)


def expected(history: list[ModelExecution], query: ExecutionQuery) -> list[uuid.UUID]:
    return model_order([i for i in history if model_matches(i, query)], query)


queries = st.builds(
    ExecutionQuery,
    statuses=st.lists(st.sampled_from([s.value for s in ExecutionStatus]), max_size=2),
    triggers=st.lists(st.sampled_from([t or "unknown" for t in TRIGGERS]), max_size=2),
    tools=st.lists(st.sampled_from([*TOOLS, "github.*", "github.issues.*", "nope.*"]), max_size=2),
    created_from=st.none() | st.sampled_from(TIMES),
    created_to=st.none() | st.sampled_from(TIMES),
    after=st.none() | st.sampled_from(TIMES),
    code_contains=st.none()
    | st.sampled_from(["a", "100%", "_", "\\", "'", "ü", "ÜNÏ", "PRINT", "#1"]),
    had_interaction=st.none() | st.booleans(),
    sort=st.sampled_from(["created_at", "duration_ms"]),
    direction=st.sampled_from(["asc", "desc"]),
    limit=st.integers(min_value=1, max_value=9),
)


@given(query=queries)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_paging_to_the_end_returns_every_match_once_in_order(
    store: AgentStore, history: list[ModelExecution], query: ExecutionQuery
) -> None:
    assert page_through(store, query) == expected(history, query)


@pytest.mark.parametrize("sort", ["created_at", "duration_ms"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_sort_and_direction_pages_through_the_scope(
    store: AgentStore, history: list[ModelExecution], sort: Any, direction: Any
) -> None:
    query = ExecutionQuery(sort=sort, direction=direction, limit=7)
    assert page_through(store, query) == expected(history, query)


@pytest.mark.parametrize(
    "query",
    [
        ExecutionQuery(statuses=["failed", "cancelled"]),
        ExecutionQuery(triggers=["unknown"]),
        ExecutionQuery(triggers=["mcp", "unknown"]),
        ExecutionQuery(tools=["github.*"]),
        ExecutionQuery(tools=["github.issues"]),
        ExecutionQuery(created_from=TIMES[1], created_to=TIMES[3]),
        ExecutionQuery(after=TIMES[2]),
        ExecutionQuery(code_contains="PRINT"),
        ExecutionQuery(had_interaction=True),
        ExecutionQuery(had_interaction=False),
        ExecutionQuery(statuses=["running"], tools=["github.*"], created_from=TIMES[0]),
    ],
    ids=lambda q: (
        ",".join(f"{k}={v}" for k, v in vars(q).items() if v not in ((), None)) if False else None
    ),
)
def test_each_filter_alone_and_combined(
    store: AgentStore, history: list[ModelExecution], query: ExecutionQuery
) -> None:
    query = _with(query, limit=100)
    assert [i.id for i in store.executions.list("team-a", query).items] == expected(history, query)


@pytest.mark.parametrize(
    "text",
    ["%", "_", "\\", "'", '"', "100%", "a_b", "C:\\tmp", "x" * 10_000, "Ünïcode ✓", "' OR 1=1 --"],
)
def test_hostile_filter_text_is_matched_literally(
    store: AgentStore, history: list[ModelExecution], text: str
) -> None:
    for query in (
        ExecutionQuery(code_contains=text, limit=100),
        ExecutionQuery(tools=[text, text + ".*"], limit=100),
    ):
        assert [i.id for i in store.executions.list("team-a", query).items] == expected(
            history, query
        )


def test_the_default_page_is_25_newest_first(
    store: AgentStore, history: list[ModelExecution]
) -> None:
    page = store.executions.list("team-a")
    assert [i.id for i in page.items] == expected(history, ExecutionQuery())[:25]
    assert page.next_cursor is not None


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_page_size_is_between_1_and_100(store: AgentStore, limit: int) -> None:
    with pytest.raises(ValidationError):
        store.executions.list("team-a", ExecutionQuery(limit=limit))


@pytest.mark.parametrize("cursor", ["", "garbage!", "eyJ4IjoxfQ", "bm90IGpzb24"])
def test_a_malformed_cursor_is_refused(store: AgentStore, cursor: str) -> None:
    with pytest.raises(ValidationError):
        store.executions.list("team-a", ExecutionQuery(cursor=cursor))


def test_a_cursor_from_another_sort_is_refused(
    store: AgentStore, history: list[ModelExecution]
) -> None:
    cursor = store.executions.list("team-a", ExecutionQuery(limit=2)).next_cursor
    for other in (
        ExecutionQuery(cursor=cursor, direction="asc"),
        ExecutionQuery(cursor=cursor, sort="duration_ms"),
    ):
        with pytest.raises(ValidationError, match="ordering"):
            store.executions.list("team-a", other)


def test_an_unknown_status_filter_is_refused(store: AgentStore) -> None:
    with pytest.raises(ValidationError):
        store.executions.list("team-a", ExecutionQuery(statuses=["done"]))


def test_code_search_folds_case_beyond_ascii(
    store: AgentStore, history: list[ModelExecution]
) -> None:
    query = ExecutionQuery(code_contains="ünï", limit=100)
    found = [i.id for i in store.executions.list("team-a", query).items]
    assert found and found == expected(history, query)
