"""The run journal: events with ever-growing integer ids, so a run can be followed."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agentstore import validation
from agentstore.boundary import Transactions
from agentstore.models import Event
from agentstore.orchestrator.common import INSERT_EVENTS, insert_events, latest_oldest_first
from agentstore.records import from_row

EVENT_COLUMNS = tuple(Event.__table__.c)


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    run_id: uuid.UUID
    ts: datetime
    source: str
    kind: str
    message: str
    payload: Any

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        return from_row(cls, row._mapping)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append with ``add_many``."""

    run_id: uuid.UUID
    source: str
    kind: str
    message: str
    payload: Any = None


def _checked(event: NewEvent) -> dict[str, Any]:
    return {
        "run_id": event.run_id,
        "source": validation.text(event.source, Event.source),
        "kind": validation.text(event.kind, Event.kind),
        "message": validation.text(event.message, Event.message, required=False),
        "payload": validation.json_value({} if event.payload is None else event.payload, "payload"),
    }


class EventRepository:
    """``store.events``."""

    def __init__(self, transactions: Transactions) -> None:
        self._tx = transactions
        self._add_one = INSERT_EVENTS.returning(*EVENT_COLUMNS)

    def add(
        self, run_id: uuid.UUID, source: str, kind: str, message: str, payload: Any = None
    ) -> EventRecord:
        """Append one event. Raises ``NotFoundError`` (no such run), ``ValidationError``."""
        values = _checked(NewEvent(run_id, source, kind, message, payload))
        with self._tx.write() as connection:
            self._tx.backend.take_journal_turn(connection, [run_id])
            row = connection.execute(self._add_one, values).one()
            return EventRecord.from_row(row)

    def add_many(self, events: Iterable[NewEvent]) -> int:
        """Append a batch of events in one round trip, all or none. Returns how many.
        Raises ``NotFoundError`` (a run does not exist), ``ValidationError``."""
        rows = [_checked(event) for event in events]
        with self._tx.write() as connection:
            insert_events(connection, self._tx.backend, rows)
        return len(rows)

    def list(self, run_id: uuid.UUID, limit: int = 50) -> builtins.list[EventRecord]:
        """The run's ``limit`` latest events, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        query = sa.select(*EVENT_COLUMNS).where(Event.run_id == run_id)
        with self._tx.read() as connection:
            rows = latest_oldest_first(connection, query, [Event.id.desc()], limit)
        return [EventRecord.from_row(row) for row in rows]

    def tail(
        self, run_id: uuid.UUID, after_id: int = 0, limit: int = 100
    ) -> builtins.list[EventRecord]:
        """Events of the run with ids above ``after_id``, oldest first: pass the last id
        seen to follow a run. A run's events become visible in the order of their ids
        (its journal writers take turns; see ``Backend.take_journal_turn``), so a follower
        never passes over one."""
        validation.positive_int(limit, "limit", maximum=10_000)
        validation.positive_int(after_id, "after_id", minimum=0)
        query = (
            sa.select(*EVENT_COLUMNS)
            .where(Event.run_id == run_id, Event.id > after_id)
            .order_by(Event.id)
            .limit(limit)
        )
        with self._tx.read() as connection:
            return [EventRecord.from_row(row) for row in connection.execute(query)]
