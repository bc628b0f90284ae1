"""Listing meta: facet counts and the chart, each an aggregate over the filtered set
computed by the database (no row of the listing is loaded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agentstore.backends import Backend
from agentstore.executions.query import ExecutionQuery, filters
from agentstore.executions.records import ChartBucket, ExecutionMeta
from agentstore.models import Execution, ExecutionInteraction, ExecutionToolCall
from agentstore.statuses import ExecutionStatus

TOP_TOOLS = 20
# Bucket width by the span between the earliest and latest filtered execution.
BUCKET_WIDTHS = (
    (timedelta(minutes=15), 30),
    (timedelta(hours=1), 120),
    (timedelta(hours=24), 1800),
    (timedelta(days=7), 10800),
)
DAY_SECONDS = 86400


def bucket_seconds(span: timedelta) -> int:
    """The chart's bucket width for executions spread over ``span``."""
    for limit, width in BUCKET_WIDTHS:
        if span <= limit:
            return width
    return DAY_SECONDS


def read_meta(
    connection: Connection, backend: Backend, scope_id: str, query: ExecutionQuery
) -> ExecutionMeta:
    where = filters(backend, scope_id, query)
    matching = sa.select(Execution.scope_id, Execution.id).where(*where).subquery()

    def scalar(statement: sa.Select[Any]) -> Any:
        return connection.execute(statement).scalar_one()

    total = scalar(
        sa.select(sa.func.count()).select_from(Execution).where(Execution.scope_id == scope_id)
    )
    statuses = {status.value: 0 for status in ExecutionStatus}
    earliest, latest, filtered = None, None, 0
    by_status = (
        sa.select(
            Execution.status,
            sa.func.count(),
            sa.func.min(Execution.created_at),
            sa.func.max(Execution.created_at),
        )
        .where(*where)
        .group_by(Execution.status)
    )
    for status, count, first, last in connection.execute(by_status):
        statuses[status] = count
        filtered += count
        earliest = first if earliest is None else min(earliest, first)
        latest = last if latest is None else max(latest, last)

    triggers = {
        kind: count
        for kind, count in connection.execute(
            sa.select(Execution.trigger_kind, sa.func.count())
            .where(*where)
            .group_by(Execution.trigger_kind)
        )
    }
    calls = sa.func.count().label("calls")
    top_tools = [
        (path, count)
        for path, count in connection.execute(
            sa.select(ExecutionToolCall.tool_path, calls)
            .join(
                matching,
                sa.and_(
                    ExecutionToolCall.scope_id == matching.c.scope_id,
                    ExecutionToolCall.execution_id == matching.c.id,
                ),
            )
            .group_by(ExecutionToolCall.tool_path)
            .order_by(calls.desc(), ExecutionToolCall.tool_path)
            .limit(TOP_TOOLS)
        )
    ]
    with_interaction = scalar(
        sa.select(sa.func.count())
        .select_from(Execution)
        .where(
            *where,
            sa.exists().where(
                ExecutionInteraction.scope_id == Execution.scope_id,
                ExecutionInteraction.execution_id == Execution.id,
            ),
        )
    )
    width = bucket_seconds(latest - earliest) if earliest and latest else 30
    bucket = backend.bucket_start(Execution.created_at, width).label("bucket")
    chart: dict[int, dict[str, int]] = {}
    for start, status, count in connection.execute(
        sa.select(bucket, Execution.status, sa.func.count())
        .where(*where)
        .group_by(bucket, Execution.status)
        .order_by(bucket)
    ):
        chart.setdefault(int(start), {})[status] = count
    return ExecutionMeta(
        total=total,
        filtered=filtered,
        statuses=statuses,
        triggers=triggers,
        top_tools=top_tools,
        with_interaction=with_interaction,
        without_interaction=filtered - with_interaction,
        bucket_seconds=width,
        chart=[
            ChartBucket(start=datetime.fromtimestamp(start, UTC), counts=counts)
            for start, counts in sorted(chart.items())
        ],
    )
