"""Pieces every orchestrator repository uses: the run check, the journal insert, and
"the latest N, oldest first" reads."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agentstore.backends import Backend
from agentstore.bulk_insert import BulkInsert
from agentstore.errors import NotFoundError
from agentstore.models import Event, Run, core_table
from agentstore.models.base import utcnow
from agentstore.records import from_rows

EVENTS = core_table(Event)
R = TypeVar("R")


@functools.cache
def insert_events_statement(backend: Backend) -> sa.Insert:
    """The journal's INSERT, built once per database: it is run on every step of a run.
    Each event stores its transaction's id (see ``Backend.transaction_id``)."""
    return sa.insert(EVENTS).values(transaction_id=backend.transaction_id())


def require_run(connection: Connection, run_id: uuid.UUID, *, lock: bool = False) -> None:
    """Raise ``NotFoundError`` unless the run exists; ``lock`` holds its row until the
    transaction ends, so concurrent writers to one run's plan take turns."""
    query = sa.select(Run.id).where(Run.id == run_id)
    if lock:
        # FOR NO KEY UPDATE: it excludes another replace of the plan, but not the
        # foreign-key checks of rows written under the run (a completion's attempt and
        # event take KEY SHARE on it while holding their task: FOR UPDATE deadlocked).
        query = query.with_for_update(key_share=True)
    if connection.execute(query).first() is None:
        raise NotFoundError(f"run {run_id} not found")


@functools.cache
def _bulk_insert_events(backend: Backend) -> BulkInsert:
    return BulkInsert(
        insert_events_statement(backend),
        ("run_id", "source", "kind", "message", "payload", "idempotency_key"),
        shared=("ts",),
        defaults={"payload": {}, "idempotency_key": None},
    )


def insert_events(
    connection: Connection, backend: Backend, events: Sequence[Mapping[str, Any]]
) -> None:
    """Append journal events (run_id, source, kind, message, and payload and
    idempotency_key if any) in one round trip. Events written together happen in one
    transaction, so they share one timestamp."""
    _bulk_insert_events(backend).execute(connection, events, {"ts": utcnow()})


def latest_of_run(table: sa.Table, *newest_first: sa.Column[Any]) -> sa.Select[Any]:
    """Every column of ``table``'s rows of one run, newest first (by the columns
    ``newest_first``, each descending): built once, with the bound parameters ``run_id``
    and ``limit`` (SQLAlchemy then skips building the statement and its cache key on
    every call). Read it with ``latest_oldest_first``."""
    return (
        sa.select(*table.c)
        .where(table.c.run_id == sa.bindparam("run_id"))
        .order_by(*[column.desc() for column in newest_first])
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def latest_oldest_first(
    connection: Connection,
    statement: sa.Select[Any],
    run_id: uuid.UUID,
    limit: int,
    record_type: type[R],
    **convert: Callable[[Any], Any],
) -> list[R]:
    """The ``limit`` newest rows of a ``latest_of_run`` statement as records (see
    ``records.from_rows``), oldest first, as a journal is read."""
    result = connection.execute(statement, {"run_id": run_id, "limit": limit})
    records = from_rows(record_type, result.all(), result.keys(), **convert)
    records.reverse()
    return records
