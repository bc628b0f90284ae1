"""A lease runs from the moment the claim writes the row, after its locks are held: a
claim that waited for another writer, or ran late in a long transaction, still hands out
the whole lease (PostgreSQL's ``now()`` is the transaction's start; the lease comes from
``clock_timestamp()``; SQLite takes its clock once the write lock is held)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import make_url

import agentstore
from agentstore import AgentStore, RunRecord
from tests.orchestrator.conftest import drafts

LEASE = timedelta(seconds=1)
HELD_FOR = 1.5  # seconds another writer holds the lock: longer than the lease


def hold_the_write_lock(db_url: str, dialect: str, taken: threading.Event) -> None:
    """Take the lock a claim's write needs, hold it for ``HELD_FOR`` seconds, let go."""
    if dialect == "sqlite":
        connection = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(HELD_FOR)
        connection.execute("COMMIT")
        connection.close()
        return
    engine = agentstore.create_engine(db_url)
    with engine.begin() as transaction:  # blocks every write to tasks, not reads
        transaction.exec_driver_sql("LOCK TABLE tasks IN SHARE MODE")
        taken.set()
        time.sleep(HELD_FOR)
    engine.dispose()


def test_a_claim_that_waited_for_the_lock_gets_its_whole_lease(
    store: AgentStore, run: RunRecord, db_url: str, dialect: str
) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    taken = threading.Event()
    holder = threading.Thread(target=hold_the_write_lock, args=(db_url, dialect, taken))
    holder.start()
    taken.wait()
    [task] = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    returned_at = datetime.now(UTC)
    holder.join()
    assert task.lease_expires_at is not None and task.lease_expires_at > returned_at


def test_a_claim_late_in_a_transaction_gets_its_whole_lease(
    store: AgentStore, run: RunRecord
) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    with store.transaction() as tx:
        tx.runs.get(run.id)  # the transaction (and PostgreSQL's now()) begins here
        time.sleep(HELD_FOR)
        [task] = tx.tasks.claim_next("w", run_id=run.id, lease=LEASE)
        returned_at = datetime.now(UTC)
        held = tx.tasks.heartbeat(task.id, task.attempt, LEASE)
    assert task.lease_expires_at is not None and task.lease_expires_at > returned_at
    assert held.lease_expires_at is not None and held.lease_expires_at > returned_at
