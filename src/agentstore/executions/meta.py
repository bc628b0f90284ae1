"""Listing meta: facet counts and the chart, each an aggregate over the filtered set
computed by the database (no row of the listing is loaded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

    total = connection.execute(
        sa.select(sa.func.count()).select_from(Execution).where(Execution.scope_id == scope_id)
    ).scalar_one()

    # One pass over the filtered executions gives the status and trigger facets, the
    # interaction split and the time span: each re-run of the filter costs as much as
    # the whole pass.
    had_interaction = sa.exists().where(
        ExecutionInteraction.scope_id == Execution.scope_id,
        ExecutionInteraction.execution_id == Execution.id,
    )
    filtered_rows = (
        sa.select(
            Execution.status,
            Execution.trigger_kind,
            Execution.created_at,
            had_interaction.label("had_interaction"),
        )
        .where(*where)
        .subquery()
    )
    kinds = (filtered_rows.c.status, filtered_rows.c.trigger_kind, filtered_rows.c.had_interaction)
    statuses = {status.value: 0 for status in ExecutionStatus}
    triggers: dict[str | None, int] = {}
    earliest, latest, filtered, with_interaction = None, None, 0, 0
    for status, trigger, had, count, first, last in connection.execute(
        sa.select(
            *kinds,
            sa.func.count(),
            sa.func.min(filtered_rows.c.created_at),
            sa.func.max(filtered_rows.c.created_at),
        ).group_by(*kinds)
    ):
        statuses[status] += count
        triggers[trigger] = triggers.get(trigger, 0) + count
        with_interaction += count if had else 0
        filtered += count
        earliest = first if earliest is None else min(earliest, first)
        latest = last if latest is None else max(latest, last)

    # Materialized, so both databases find the few matching executions first and then
    # their tool calls by index, instead of walking all of the scope's tool calls.
    matching = (
        sa.select(Execution.scope_id, Execution.id)
        .where(*where)
        .cte("matching")
        .prefix_with("MATERIALIZED")
    )
    calls = sa.func.count().label("calls")
    top_tools = [
        (path, count)
        for path, count in connection.execute(
            sa.select(ExecutionToolCall.tool_path, calls)
            .select_from(matching)
            .join(
                ExecutionToolCall,
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
