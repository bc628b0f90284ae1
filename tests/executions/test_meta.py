"""Meta: facet counts and chart buckets, computed by SQL over the filtered set."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, ExecutionQuery
from agentstore.executions.meta import bucket_seconds
from agentstore.models import Execution
from agentstore.statuses import ExecutionStatus
from tests.executions.conftest import ModelExecution
from tests.executions.test_listing import model_matches
from tests.support.databases import DIALECTS

# SQLite and PostgreSQL only: PgBouncer passes the facet and chart queries through as
# they are, and the pooled paths (transactions, autocommit steps, retries) are held by
# the other suites.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)


@pytest.mark.parametrize(
    "query", [ExecutionQuery(), ExecutionQuery(statuses=["failed", "running"], tools=["github.*"])]
)
def test_meta_counts_match_the_data(
    store: AgentStore, history: list[ModelExecution], query: ExecutionQuery
) -> None:
    matching = [i for i in history if model_matches(i, query)]
    meta = store.executions.meta("team-a", query)
    assert meta.total == len(history)
    assert meta.filtered == len(matching)
    assert meta.statuses == {
        s.value: sum(i.status == s.value for i in matching) for s in ExecutionStatus
    }
    assert meta.triggers == dict(Counter(i.trigger_kind for i in matching))
    tools = Counter(t for i in matching for t in i.tools)
    assert dict(meta.top_tools) == dict(tools)
    assert [count for _, count in meta.top_tools] == sorted(tools.values(), reverse=True)
    assert meta.with_interaction == sum(i.interactions > 0 for i in matching)
    assert meta.with_interaction + meta.without_interaction == meta.filtered
    assert sum(sum(b.counts.values()) for b in meta.chart) == meta.filtered


def test_every_status_is_counted_even_when_zero(store: AgentStore) -> None:
    meta = store.executions.meta("empty-scope")
    assert meta.statuses == {s.value: 0 for s in ExecutionStatus}
    assert (meta.total, meta.filtered, meta.chart, meta.top_tools) == (0, 0, [], [])


@pytest.mark.parametrize(
    ("span", "width"),
    [
        (timedelta(minutes=15), 30),
        (timedelta(minutes=15, seconds=1), 120),
        (timedelta(hours=1), 120),
        (timedelta(hours=1, seconds=1), 1800),
        (timedelta(hours=24), 1800),
        (timedelta(hours=24, seconds=1), 10800),
        (timedelta(days=7), 10800),
        (timedelta(days=7, seconds=1), 86400),
    ],
)
def test_bucket_width_at_each_boundary(store: AgentStore, span: timedelta, width: int) -> None:
    assert bucket_seconds(span) == width
    start = datetime(2026, 3, 1, 0, 0, 7, tzinfo=UTC)
    for when, status in ((start, "completed"), (start + span, "failed")):
        created = store.executions.create("chart", "x", status=status)
        with store.engine.begin() as connection:
            connection.execute(
                sa.update(Execution).where(Execution.id == created.id).values(created_at=when)
            )
    meta = store.executions.meta("chart")
    assert meta.bucket_seconds == width
    epoch = int(start.timestamp())
    first = datetime.fromtimestamp(epoch // width * width, UTC)
    last = datetime.fromtimestamp(int((start + span).timestamp()) // width * width, UTC)
    assert [(b.start, b.counts) for b in meta.chart] == [
        (first, {"completed": 1}),
        (last, {"failed": 1}),
    ]
