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

EVENTS = core_table(Event)
EVENT_FIELDS = ("run_id", "ts", "source", "kind", "message", "payload")
_JOURNAL_INSERTS: dict[str, sa.Insert] = {}


def journal_insert(backend: Backend) -> sa.Insert:
    """The INSERT of one event (bound parameters named as ``EVENT_FIELDS``) that keeps
    each run's events visible in id order. Built once per database: the journal is
    appended to on every step of a run."""
    statement = _JOURNAL_INSERTS.get(backend.name)
    if statement is None:
        values = [sa.bindparam(name, type_=EVENTS.c[name].type) for name in EVENT_FIELDS]
        rows = backend.in_journal_order(sa.select(*values), values[0])
        statement = _JOURNAL_INSERTS[backend.name] = sa.insert(EVENTS).from_select(
            EVENT_FIELDS, rows
        )
    return statement


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
    # Runs in one order, so that writers to several runs take their locks alike.
    rows.sort(key=lambda row: row["run_id"])
    if rows:
        connection.execute(journal_insert(backend), rows)


def latest_oldest_first(
    connection: Connection, query: sa.Select[Any], newest_first: list[Any], limit: int
) -> list[Row[Any]]:
    """The ``limit`` newest rows of ``query`` (ordered by ``newest_first``), returned
    oldest first, as a journal is read."""
    rows = connection.execute(query.order_by(*newest_first).limit(limit)).all()
    return list(reversed(rows))
