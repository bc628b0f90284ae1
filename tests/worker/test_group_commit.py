"""Tasks whose handlers finish together are completed together: one write for the
group and the claim of their successors (``store.tasks.complete_many``), each task
completed once, with its own attempt, result and journal entry."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from agentstore import AgentStore, RunRecord, TaskDraft, TaskStatus
from agentstore.worker import TaskContext, Worker

HANDS = 8


def test_handlers_finishing_together_are_completed_in_one_write(
    db_url: str, sync_store: AgentStore, run: RunRecord
) -> None:
    sync_store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(HANDS * 3)])
    together = threading.Barrier(HANDS)  # the first eight finish at the same moment

    def handler(context: TaskContext) -> dict[str, str]:
        if context.task.position < HANDS:
            together.wait(timeout=30)
        return {"title": context.task.title}

    with AgentStore.open(db_url) as store:
        writes: list[str] = []
        store.watch_writes(writes.append)
        worker = Worker(
            store,
            handler,
            run_id=run.id,
            concurrency=HANDS,
            batch=HANDS,
            poll_interval=timedelta(milliseconds=50),
        )
        counters = worker.run(until_idle=True)

    assert counters.claimed == counters.completed == HANDS * 3
    assert "complete_many" in writes  # at least one group was written as one
    tasks = sync_store.tasks.list(run.id)
    assert {task.status for task in tasks} == {TaskStatus.COMPLETED}
    attempts = sync_store.attempts.recent(run.id, limit=100)
    assert Counter(a.task_id for a in attempts) == Counter(task.id for task in tasks)
    assert {a.result["title"] for a in attempts} == {task.title for task in tasks}
    completed = [
        e for e in sync_store.events.list(run.id, limit=1000) if e.kind == "task_completed"
    ]
    assert len(completed) == HANDS * 3
