"""``agentstore.worker``: the runtime that drives tasks, for both faces.

from agentstore.worker import Worker

def handler(context):
    ...  # do context.task's work; return a summary, or raise Retry / Block / Wait
Worker(store, handler, run_id=run.id, concurrency=4).run()
"""

from agentstore.worker.outcomes import Block, Retry, TaskContext, Wait
from agentstore.worker.runtime import Worker, WorkerCounters

__all__ = ["Block", "Retry", "TaskContext", "Wait", "Worker", "WorkerCounters"]
