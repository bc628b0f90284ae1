"""The thread that saves sync recordings in the background (see ``executions.recorder``).

One daemon thread per process serves every recording of every sync store: a recording
that changed asks to be flushed after a delay, and the thread flushes it then. The
asyncio face needs no thread: a recording there schedules its flush on its event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

log = logging.getLogger("agentstore.recorder")


class Flushable(Protocol):
    def flush_in_background(self) -> None:
        """Save what changed; never raises (the recording's own exit saves it again)."""


class BackgroundFlushes:
    """Flushes recordings when their time comes, one at a time, on a thread of its own
    (started at the first request, and again in a forked child that asks)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[Flushable, float] = {}
        self._thread: threading.Thread | None = None

    def schedule(self, recording: Flushable, delay: float) -> None:
        """Flush ``recording`` ``delay`` seconds from now, unless it is due already."""
        with self._changed:
            if recording in self._due:
                return
            self._due[recording] = time.monotonic() + delay
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agentstore-recorder-flushes", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def cancel(self, recording: Flushable) -> None:
        """Forget ``recording``'s flush (its exit saves it itself)."""
        with self._changed:
            self._due.pop(recording, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due:
                    self._changed.wait()
                recording, at = min(self._due.items(), key=lambda due: due[1])
                wait = at - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)  # or until another request comes
                    continue
                del self._due[recording]
            try:
                recording.flush_in_background()
            except Exception:  # never let one recording stop the others' flushes
                log.exception("a background flush failed")


BACKGROUND = BackgroundFlushes()
