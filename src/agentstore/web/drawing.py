"""The dashboard's pictures, measured on the server: the chart of execution buckets
(stacked bars, one per status per bucket, drawn as SVG) and the timeline of an
execution's tool calls (bars placed by start offset and duration). Templates only draw
what these give them, so a page needs no script to show either."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentstore.executions import ChartBucket, ExecutionRecord, ToolCallRecord
from agentstore.statuses import ExecutionStatus

# Stacked bottom to top, as the terminal chart (agentstore.cli.chart) orders its glyphs.
STACK = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.RUNNING,
    ExecutionStatus.WAITING_FOR_INTERACTION,
    ExecutionStatus.PENDING,
    ExecutionStatus.CANCELLED,
)
WIDTH, HEIGHT = 760, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 22  # the plot's margins: axis labels live there
FEWEST_SLOTS = 30  # a chart of a few buckets keeps its bars narrow, from the left


@dataclass(frozen=True, slots=True)
class Bar:
    """The executions of one status in one bucket, as a rectangle of the chart."""

    bucket: datetime
    status: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    most: int  # the tallest bucket's count: the top of the y axis
    first: datetime | None
    last: datetime | None
    bucket_seconds: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def chart(buckets: Sequence[ChartBucket], bucket_seconds: int) -> Chart:
    """The bars of ``buckets`` (non-empty ones, oldest first), each bucket in its place
    on a time axis from the first to the last, so gaps show as gaps."""
    if not buckets:
        return Chart([], 0, None, None, bucket_seconds)
    first, last = buckets[0].start, buckets[-1].start
    slots = int((last - first).total_seconds() // bucket_seconds) + 1
    slot = (WIDTH - LEFT - RIGHT) / max(slots, FEWEST_SLOTS)
    most = max(sum(bucket.counts.values()) for bucket in buckets)
    scale = (HEIGHT - TOP - BOTTOM) / most
    bars = []
    for bucket in buckets:
        x = LEFT + (bucket.start - first).total_seconds() // bucket_seconds * slot
        base = float(HEIGHT - BOTTOM)
        for status in STACK:
            count = bucket.counts.get(status.value, 0)
            if count == 0:
                continue
            height = count * scale
            base -= height
            bars.append(
                Bar(bucket.start, status.value, count, x + slot * 0.1, base, slot * 0.8, height)
            )
    return Chart(bars, most, first, last, bucket_seconds)


@dataclass(frozen=True, slots=True)
class Span:
    """A tool call on its execution's timeline: offsets in milliseconds from the
    execution's start, and its place as percentages of the timeline's width."""

    call: ToolCallRecord
    start_ms: int
    duration_ms: int | None  # None: still running
    left: float
    width: float


def timeline(
    execution: ExecutionRecord, calls: Sequence[ToolCallRecord], now: datetime
) -> list[Span]:
    """Where each call sits between the execution's start and its end (or now, or the
    end of its last call, whichever is last); a running call reaches to now."""

    def millis(delta: timedelta) -> int:
        return max(0, round(delta.total_seconds() * 1000))

    begun = execution.started_at
    ends = [millis((execution.completed_at or now) - begun)]
    placed = []
    for call in calls:
        start = millis(call.started_at - begun)
        duration = call.duration_ms
        if duration is None and call.completed_at is not None:
            duration = millis(call.completed_at - call.started_at)
        reach = duration if duration is not None else millis(now - call.started_at)
        ends.append(start + reach)
        placed.append((call, start, duration, reach))
    total = max(max(ends), 1)
    spans = []
    for call, start, duration, reach in placed:
        left = min(100 * start / total, 99.5)  # an instant call still shows as a sliver
        spans.append(Span(call, start, duration, left, max(100 * reach / total, 0.5)))
    return spans
