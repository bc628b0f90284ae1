"""The chaos drain's job, and the moments at which a worker kills itself.

A worker process started with ``CHAOS_KILL=<point>:<n>`` SIGKILLs itself the ``n``-th
time it reaches ``<point>``. A completion on SQLite is a transaction of a few
statements; on PostgreSQL it is one statement in autocommit (the statement is its own
transaction and commit), so the moments are:

- ``after_claim``: a claimed task's job starts (the claim committed; the task is held);
- ``in_complete``: SQLite: the completion's first statement ran, its transaction holds
  the write lock. PostgreSQL: the statement is in flight (the process dies 0-2 ms after
  handing it to the driver: before, while or after the server runs and commits it);
- ``before_commit``: SQLite: every statement ran, COMMIT is about to be sent.
  PostgreSQL: the statement is about to be sent;
- ``after_commit``: the completion committed and the driver has the reply, which the
  worker never sees.

A completion is told apart by the job's summary (``MARK``) among a statement's
parameters; the moments come from SQLAlchemy's engine and pool events, so they hold
under the asyncio face too. Before dying the process writes ``chaos kill: <point>`` to
its stderr, so the drain counts the kills by moment.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from agentstore.backends.base import ONE_STATEMENT
from agentstore.worker import TaskContext

POINTS = ("after_claim", "in_complete", "before_commit", "after_commit")
MARK = "chaos job done"
COMPLETING = "chaos_completing"  # keys in the pooled connection's info
COMMITTED = "chaos_committed"

_point, _, _left = os.environ.get("CHAOS_KILL", "").partition(":")
_countdown = {_point: int(_left)} if _point else {}


def job(context: TaskContext) -> str:
    """A few milliseconds of work; its summary marks the completion's statements."""
    _reached("after_claim")
    context.sleep(random.uniform(0.001, 0.02))
    return MARK


def _reached(point: str, *, within_seconds: float = 0.0) -> None:
    if point not in _countdown:
        return
    _countdown[point] -= 1
    if _countdown[point] == 0:
        if within_seconds:
            threading.Timer(random.uniform(0, within_seconds), _die, (point,)).start()
        else:
            _die(point)


def _die(point: str) -> None:
    os.write(2, f"chaos kill: {point}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)


def _marked(parameters: Any) -> bool:
    if isinstance(parameters, Mapping):
        return MARK in parameters.values()
    if isinstance(parameters, Sequence) and not isinstance(parameters, str):
        return any(p == MARK or (not isinstance(p, str) and _marked(p)) for p in parameters)
    return False


def _one_statement(conn: Connection) -> bool:
    """A call sent as one statement, committed as it runs (no BEGIN, no COMMIT)."""
    return bool(conn.get_execution_options().get(ONE_STATEMENT))


def _before_statement(conn: Connection, *args: Any) -> None:
    parameters = args[2]  # cursor, statement, parameters, context, executemany
    if _one_statement(conn) and _marked(parameters):
        _reached("before_commit")
        _reached("in_complete", within_seconds=0.002)


def _after_statement(conn: Connection, *args: Any) -> None:
    parameters = args[2]
    if not _marked(parameters):
        return
    if _one_statement(conn):
        _reached("after_commit")
    elif not conn.info.get(COMPLETING):
        conn.info[COMPLETING] = True
        _reached("in_complete")


def _commit(conn: Connection) -> None:
    if conn.info.pop(COMPLETING, False):
        conn.info[COMMITTED] = True
        _reached("before_commit")


def _rollback(conn: Connection) -> None:
    conn.info.pop(COMPLETING, None)


def _checkin(dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
    # The connection comes back to the pool after its transaction ended: the caller
    # has not had the reply yet.
    if entry is not None and entry.info.pop(COMMITTED, False):
        _reached("after_commit")


if _countdown:
    event.listen(Engine, "before_cursor_execute", _before_statement)
    event.listen(Engine, "after_cursor_execute", _after_statement)
    event.listen(Engine, "commit", _commit)
    event.listen(Engine, "rollback", _rollback)
    event.listen(Pool, "checkin", _checkin)
