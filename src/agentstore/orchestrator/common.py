"""Pieces every orchestrator repository uses: the run check, the journal insert, and
"the latest N, oldest first" reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from agentstore.backends import Backend
from agentstore.errors import NotFoundError
from agentstore.models import Event, Run, core_table
from agentstore.models.base import utcnow

# Built once: the journal is appended to on every step of a run.
INSERT_EVENTS = sa.insert(core_table(Event))


def require_run(connection: Connection, run_id: uuid.UUID, *, lock: bool = False) -> None:
    """Raise ``NotFoundError`` unless the run exists; ``lock`` holds its row until the
    transaction ends, so concurrent writers to one run's plan take turns."""
    query = sa.select(Run.id).where(Run.id == run_id)
    if lock:
        query = query.with_for_update()
    if connection.execute(query).first() is None:
        raise NotFoundError(f"run {run_id} not found")


def insert_events(
    connection: Connection, backend: Backend, events: Iterable[Mapping[str, Any]]
) -> None:
    """Append journal events (run_id, source, kind, message, payload) in one round trip.
    Events written together happen in one transaction, so they share one timestamp."""
    now = utcnow()
    rows = [{"payload": {}, **event, "ts": now} for event in events]
    if rows:
        backend.take_journal_turn(connection, (row["run_id"] for row in rows))
        connection.execute(INSERT_EVENTS, rows)


def latest_oldest_first(
    connection: Connection, query: sa.Select[Any], newest_first: list[Any], limit: int
) -> list[Row[Any]]:
    """The ``limit`` newest rows of ``query`` (ordered by ``newest_first``), returned
    oldest first, as a journal is read."""
    rows = connection.execute(query.order_by(*newest_first).limit(limit)).all()
    return list(reversed(rows))
