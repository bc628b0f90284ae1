"""Journal writer processes for the event-ordering test. Each opens its own store."""

from __future__ import annotations

import os
import signal
import uuid
from typing import Any

from agentstore import AgentStore


def write_and_hold(url: str, run_id: str, written: Any, release: Any) -> None:
    """Append an event, then keep its transaction open until ``release``."""
    with AgentStore.open(url) as store, store.transaction() as tx:
        tx.events.add(uuid.UUID(run_id), "worker", "first", "written first, committed last")
        written.set()
        release.wait(120)


def write_and_freeze(url: str, run_id: str, written: Any) -> None:
    """Append an event, then stop dead inside the transaction (SIGSTOP), as a process
    the machine stopped scheduling does; it commits once continued (SIGCONT)."""
    with AgentStore.open(url) as store, store.transaction() as tx:
        tx.events.add(uuid.UUID(run_id), "worker", "frozen", "written, then frozen")
        written.set()
        os.kill(os.getpid(), signal.SIGSTOP)


def write(url: str, run_id: str, writing: Any) -> None:
    """Append an event at once."""
    with AgentStore.open(url) as store:
        store.runs.get(uuid.UUID(run_id))  # connected and warm before saying so
        writing.set()
        store.events.add(uuid.UUID(run_id), "worker", "second", "written second")
