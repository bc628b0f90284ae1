"""Drawing in the terminal: a stacked bar chart of execution buckets, a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from agentstore.executions import ChartBucket
from agentstore.statuses import ExecutionStatus

# One glyph per status, so the chart reads without colour too.
GLYPHS = {
    ExecutionStatus.COMPLETED.value: "█",
    ExecutionStatus.FAILED.value: "▓",
    ExecutionStatus.RUNNING.value: "▒",
    ExecutionStatus.WAITING_FOR_INTERACTION.value: "░",
    ExecutionStatus.PENDING.value: "·",
    ExecutionStatus.CANCELLED.value: "x",
}


def bar_chart(buckets: Sequence[ChartBucket], bucket_seconds: int, width: int = 50) -> str:
    """One line per bucket: its start time and a bar stacked by status."""
    if not buckets:
        return "(no executions)"
    most = max(sum(b.counts.values()) for b in buckets)
    fmt = "%Y-%m-%d %H:%M" if bucket_seconds < 86400 else "%Y-%m-%d"
    lines = []
    for bucket in buckets:
        total = sum(bucket.counts.values())
        bar = ""
        for status, glyph in GLYPHS.items():
            share = bucket.counts.get(status, 0) * width / most
            bar += glyph * round(share)
        lines.append(f"{bucket.start.strftime(fmt)} │{bar} {total}")
    legend = "  ".join(f"{glyph} {status}" for status, glyph in GLYPHS.items())
    lines.append(f"{' ' * len(buckets[0].start.strftime(fmt))} └ buckets of {bucket_seconds}s")
    lines.append(legend)
    return "\n".join(lines)


def progress(done: int, total: int, label: str = "", width: int = 30) -> None:
    """Redraw a progress bar on the current terminal line (stderr)."""
    filled = width if total == 0 else round(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}")
    sys.stderr.flush()
