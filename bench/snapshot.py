"""Run snapshot: ``store.runs.snapshot`` of a run with 10,000 events and 500 tasks,
against the same reads written by hand on the raw driver, in one read-only transaction
on both sides (the snapshot's guarantee)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta

from agentstore import AgentStore, NewEvent, TaskDraft
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
TASK_COLUMNS = (
    "id, run_id, title, objective, acceptance_criteria, verification_steps, allowed_paths, "
    "status, position, priority, attempt, max_attempts, claimed_by, lease_expires_at, "
    "implementation_summary, blocker_signature, created_at, updated_at"
)
# The snapshot's reads, as a person would write them: (SQL with {p} for a parameter,
# how many parameters after the run id).
READS = [
    *[
        (
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = {{p}} AND status = '{status}' "
            f"ORDER BY position, id LIMIT {LIMITS.tasks_per_status}"
        )
        for status in TaskStatus
    ],
    "SELECT run_id, role, session_id, turns, rotation_count, last_prompt_path, "
    "last_response_path, updated_at FROM agent_states WHERE run_id = {p} ORDER BY role",
    "SELECT id, run_id, task_id, attempt, status, summary, blocker_signature, result, "
    "created_at FROM task_attempts WHERE run_id = {p} ORDER BY created_at DESC, id DESC "
    f"LIMIT {LIMITS.attempts}",
    "SELECT id, run_id, ts, source, kind, message, payload FROM events WHERE run_id = {p} "
    f"ORDER BY id DESC LIMIT {LIMITS.events}",
    "SELECT id, run_id, source, verdict, rationale, payload, created_at FROM approvals "
    f"WHERE run_id = {{p}} ORDER BY created_at DESC, id DESC LIMIT {LIMITS.approvals}",
    "SELECT id, run_id, role, kind, path, metadata, created_at FROM artifacts "
    f"WHERE run_id = {{p}} ORDER BY created_at DESC, id DESC LIMIT {LIMITS.artifacts}",
    "SELECT id, run_id, status, payload, created_at FROM checkpoints WHERE run_id = {p} "
    "ORDER BY created_at DESC, id DESC LIMIT 1",
]
RUN_READ = (
    "SELECT id, goal, repo_path, status, summary, cycle_count, replan_count, current_task_id, "
    "created_at, updated_at FROM runs WHERE id = {p}"
)


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
        context.report.add(
            Row(
                "snapshot",
                f"{dialect}: snapshot of {tasks} tasks, {events:,} events, p50",
                "ms",
                percentile(library, 0.5),
                percentile(raw, 0.5),
                higher_is_better=False,
                notes=f"p95 {percentile(library, 0.95):.1f} ms (raw {percentile(raw, 0.95):.1f})",
            )
        )
