"""What a handler sees (``TaskContext``) and the explicit outcomes it may raise."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from agentstore.orchestrator import TaskRecord


class Retry(Exception):  # an outcome, raised on purpose
    """Raise from a handler to fail this attempt and try the task again after ``after``
    (default: the backoff policy's delay)."""

    def __init__(self, reason: str = "retry requested", *, after: timedelta | None = None):
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Block(Exception):  # an outcome, raised on purpose
    """Raise from a handler to end the task ``blocked``: it cannot be done as planned."""

    def __init__(self, reason: str, *, signature: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.signature = signature


class Wait(Exception):  # an outcome, raised on purpose
    """Raise from a handler to ask a person ``question`` (any JSON value but null) and
    give the task up meanwhile: it waits, held by nobody, and is claimed again once
    answered, the handler then reading ``context.task.answer`` (``store.tasks.answer``).
    A wait is not a failure: it does not use up ``max_attempts``."""

    def __init__(self, question: Any):
        super().__init__(question)
        self.question = question


class TaskContext:
    """The task a handler works on, and whether it should stop.

    ``cancelled`` turns true when the work is no longer wanted: someone cancelled the
    task, the worker lost its lease, or the worker is shutting down and its grace period
    ran out. An async handler is also cancelled (``asyncio.CancelledError``); a sync
    handler cannot be, so it should check ``cancelled`` (or wait with ``sleep``) between
    steps. Whatever it returns after that is discarded.
    """

    __slots__ = ("_cancelled", "task")

    def __init__(self, task: TaskRecord) -> None:
        self.task = task
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True if the work was cancelled meanwhile."""
        return self._cancelled.wait(seconds)

    def cancel(self) -> None:
        self._cancelled.set()
