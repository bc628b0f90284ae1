"""Run snapshot: ``store.runs.snapshot`` of a run with 10,000 events and 500 tasks,
against the same reads written by hand on the raw driver (the same rows, every column
of each table, as the library reads them; no records built), in one read-only
transaction on both sides (the snapshot's guarantee)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta

from agentstore import AgentStore, NewEvent, TaskDraft
from agentstore.models import Base
from agentstore.models.orchestrator import (
    AgentState,
    Approval,
    Artifact,
    Checkpoint,
    Event,
    Run,
    Task,
    TaskAttempt,
)
from agentstore.orchestrator.snapshot import SnapshotLimits
from agentstore.statuses import TaskStatus
from bench.harness import (
    Context,
    Row,
    latencies_ms,
    percentile,
    raw_postgres_connect,
    raw_sqlite_connect,
)

LIMITS = SnapshotLimits()
RAW_TARGET = 0.5


def columns(model: type[Base]) -> str:
    """Every column of ``model``'s table, as the library reads them to build its records."""
    return ", ".join(column.name for column in Base.metadata.tables[model.__tablename__].c)


# The snapshot's reads, as a person would write them, with {p} for the run id. A list
# that a limit cuts is read with one entry more, as the library reads it (to tell
# whether it was cut).
READS = [
    *[
        (
            f"SELECT {columns(Task)} FROM tasks WHERE run_id = {{p}} AND status = '{status}' "
            f"ORDER BY position, id LIMIT {LIMITS.tasks_per_status + 1}"
        )
        for status in TaskStatus
    ],
    f"SELECT {columns(AgentState)} FROM agent_states WHERE run_id = {{p}} ORDER BY role",
    f"SELECT {columns(TaskAttempt)} FROM task_attempts WHERE run_id = {{p}} "
    f"ORDER BY created_at DESC, id DESC LIMIT {LIMITS.attempts + 1}",
    f"SELECT {columns(Event)} FROM events WHERE run_id = {{p}} "
    f"ORDER BY id DESC LIMIT {LIMITS.events + 1}",
    f"SELECT {columns(Approval)} FROM approvals WHERE run_id = {{p}} "
    f"ORDER BY created_at DESC, id DESC LIMIT {LIMITS.approvals + 1}",
    f"SELECT {columns(Artifact)} FROM artifacts WHERE run_id = {{p}} "
    f"ORDER BY created_at DESC, id DESC LIMIT {LIMITS.artifacts + 1}",
    f"SELECT {columns(Checkpoint)} FROM checkpoints WHERE run_id = {{p}} "
    "ORDER BY created_at DESC, id DESC LIMIT 1",
]
RUN_READ = f"SELECT {columns(Run)} FROM runs WHERE id = {{p}}"


def seed(url: str, tasks: int, events: int) -> uuid.UUID:
    """A busy run: its plan half done (with an attempt per finished task), agents,
    reviews, artifacts, checkpoints, and a long journal."""
    with AgentStore.open(url) as store:
        run = store.runs.create("benchmark the snapshot", "/bench")
        store.tasks.replace_pending(
            run.id, [TaskDraft(f"task {n}", "do the thing") for n in range(tasks)]
        )
        for n, task in enumerate(
            store.tasks.claim_next(
                "seeder", run_id=run.id, lease=timedelta(hours=1), limit=tasks // 2
            )
        ):
            if n % 10 == 0:
                continue  # left in progress
            # Records the attempt (with its result) and journals the completion too.
            store.tasks.complete(task.id, "done", attempt=task.attempt, result={"n": n})
        for role in ("planner", "coder", "reviewer"):
            store.agents.save(run.id, role, session_id=f"{role}-session", turns=42)
        for n in range(20):
            store.approvals.add(run.id, "reviewer", "approved", f"review {n}")
        for n in range(50):
            store.artifacts.add(run.id, "diff", f"/bench/patch-{n}.diff", role="coder")
        for n in range(10):
            store.checkpoints.add(run.id, "running", {"cycle": n})
        for start in range(0, events, 500):
            store.events.add_many(
                NewEvent(run.id, "worker", "progress", f"step {n}", {"step": n})
                for n in range(start, min(start + 500, events))
            )
        return run.id


def raw_snapshot(url: str, run_id: uuid.UUID) -> Callable[[], object]:
    """One snapshot's reads on the raw driver, as a repeatable call."""
    if url.startswith("sqlite"):
        connection = raw_sqlite_connect(url)
        statements = [sql.format(p="?") for sql in (RUN_READ, *READS)]
        key = run_id.hex

        def read_sqlite() -> object:
            connection.execute("BEGIN DEFERRED")
            rows = [connection.execute(sql, (key,)).fetchall() for sql in statements]
            connection.execute("COMMIT")
            return rows

        return read_sqlite
    pg = raw_postgres_connect(url)
    pg_statements = [sql.format(p="%s") for sql in (RUN_READ, *READS)]

    def read_postgres() -> object:
        pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = [pg.execute(sql, (run_id,)).fetchall() for sql in pg_statements]
        pg.commit()
        return rows

    pg.autocommit = True  # the BEGIN above is ours
    return read_postgres


def run(context: Context) -> None:
    tasks, events = (100, 1_000) if context.quick else (500, 10_000)
    calls = 20 if context.quick else 100 * context.repeat
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "snapshot")
        run_id = seed(url, tasks, events)
        with AgentStore.open(url) as store:
            library = latencies_ms(functools.partial(store.runs.snapshot, run_id), calls)
        raw = latencies_ms(raw_snapshot(url, run_id), calls)
        ratio = percentile(raw, 0.5) / percentile(library, 0.5)
        context.report.add(
            Row(
                "snapshot",
                f"{dialect}: snapshot of {tasks} tasks, {events:,} events, p50",
                "ms",
                percentile(library, 0.5),
                percentile(raw, 0.5),
                higher_is_better=False,
                target=f">= {RAW_TARGET:g}x raw",
                met=None if context.quick else ratio >= RAW_TARGET,
                notes=f"p95 {percentile(library, 0.95):.1f} ms (raw {percentile(raw, 0.95):.1f})",
            )
        )
