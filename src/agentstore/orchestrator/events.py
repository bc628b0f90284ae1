"""The run journal: events with ever-growing integer ids, so a run can be followed."""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import Backend
from agentstore.errors import ConflictError, ValidationError
from agentstore.models import Event, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.common import (
    insert_events,
    insert_events_statement,
    latest_of_run,
    latest_oldest_first,
)
from agentstore.records import from_row
from agentstore.validation import Id

EVENT_COLUMNS = tuple(Event.__table__.c)
EVENTS = core_table(Event)
_LATEST = latest_of_run(EVENTS, EVENTS.c.id)


@functools.cache
def _add_one(backend: Backend) -> sa.Insert:
    """``events.add``'s statement, built once per database (appending is a hot path)."""
    return insert_events_statement(backend).returning(*EVENT_COLUMNS)


@functools.cache
def _add_new(backend: Backend) -> sa.Insert:
    """An append with idempotency keys: an event whose key its run already has is not
    appended again."""
    events = core_table(Event)
    statement: sa.Insert = (
        backend.insert(events)
        .values(transaction_id=backend.transaction_id())
        .on_conflict_do_nothing(
            index_elements=["run_id", "idempotency_key"],
            index_where=events.c.idempotency_key.is_not(None),
        )
        .returning(*EVENT_COLUMNS)
    )
    return statement


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    run_id: UUID
    ts: datetime
    source: str
    kind: str
    message: str
    payload: Any
    idempotency_key: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        return from_row(cls, row._mapping)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append with ``add_many``."""

    run_id: Id
    source: str
    kind: str
    message: str
    payload: Any = None
    #: The writer's key for this append, unique within the run: appending again an
    #: event with its key (a retry after a lost reply) appends nothing.
    idempotency_key: str | None = None


def _checked(event: NewEvent) -> dict[str, Any]:
    if not isinstance(event, NewEvent):
        raise ValidationError(f"expected a NewEvent, got {type(event).__name__}")
    return {
        "run_id": validation.identifier(event.run_id, "run_id"),
        "source": validation.text(event.source, Event.source),
        "kind": validation.text(event.kind, Event.kind),
        "message": validation.text(event.message, Event.message, required=False),
        "payload": validation.json_value({} if event.payload is None else event.payload, "payload"),
        "idempotency_key": validation.optional_text(event.idempotency_key, Event.idempotency_key),
    }


class EventRepository(Repository, aggregate="events"):
    """``store.events``: a run's journal."""

    __slots__ = ()

    @writes
    def add(
        self,
        run_id: Id,
        source: str,
        kind: str,
        message: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> EventRecord:
        """Append one event. With ``idempotency_key``, appending again the same event
        (a retry after a lost reply) returns it and appends nothing. Raises
        ``ConflictError`` (the key is another event's of the run), ``NotFoundError`` (no
        such run), ``ValidationError``."""
        values = _checked(NewEvent(run_id, source, kind, message, payload, idempotency_key))
        if idempotency_key is None:
            statement = _add_one(self._backend)
            return EventRecord.from_row(self._connection.execute(statement, values).one())
        row = self._connection.execute(_add_new(self._backend), values).first()
        if row is not None:
            return EventRecord.from_row(row)
        [stored] = self._appended_before([values])
        return stored

    @writes
    def add_many(self, events: Iterable[NewEvent]) -> int:
        """Append a batch of events in one round trip, all or none. Events given with
        their ``idempotency_key`` that their run has already (a retried batch) are not
        appended again. Returns how many were appended. Raises ``ConflictError``,
        ``NotFoundError`` (a run does not exist), ``ValidationError``."""
        rows = [_checked(event) for event in validation.sequence(events, "events")]
        if all(row["idempotency_key"] is None for row in rows):
            insert_events(self._connection, self._backend, rows)
            return len(rows)
        appended = self._connection.execute(_add_new(self._backend), rows).all()
        keys = {(row.run_id, row.idempotency_key) for row in appended}
        self._appended_before(
            [row for row in rows if (row["run_id"], row["idempotency_key"]) not in keys]
        )
        return len(appended)

    @reads
    def list(self, run_id: Id, limit: int = 50) -> builtins.list[EventRecord]:
        """The run's ``limit`` latest events, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        run_id = validation.identifier(run_id, "run_id")
        return latest_oldest_first(self._connection, _LATEST, run_id, limit, EventRecord)

    def _appended_before(self, rows: builtins.list[dict[str, Any]]) -> builtins.list[EventRecord]:
        """The stored events under the keys of ``rows`` (checked events whose append
        found their key taken), each the same event. Raises ``ConflictError``."""
        stored = []
        for row in rows:
            found = self._connection.execute(
                sa.select(*EVENT_COLUMNS).where(
                    Event.run_id == row["run_id"],
                    Event.idempotency_key == row["idempotency_key"],
                )
            ).one()
            event = EventRecord.from_row(found)
            payload = json.loads(row["payload"])
            if (event.source, event.kind, event.message, event.payload) != (
                row["source"],
                row["kind"],
                row["message"],
                payload,
            ):
                raise ConflictError(
                    f"idempotency key {row['idempotency_key']!r} is another event's of the run"
                )
            stored.append(event)
        return stored

    @reads
    def tail(self, run_id: Id, after_id: int = 0, limit: int = 100) -> builtins.list[EventRecord]:
        """The run's events after the event ``after_id`` (0: from the start), in the
        order they were committed: pass the id of the last event seen to follow a run;
        a follower never passes over an event, however late its transaction commits.

        Events of one transaction come in id order; events of concurrent transactions
        in the order of their transactions, so ids may step back between them. Events
        of a transaction still running are held back (with the ones after them) until
        it ends, however long; writers never wait for followers or for each other."""
        validation.positive_int(limit, "limit", maximum=10_000)
        validation.positive_int(after_id, "after_id", minimum=0, maximum=2**63 - 1)
        events = core_table(Event)
        order = (events.c.transaction_id, events.c.id)
        after_transaction = sa.select(events.c.transaction_id).where(events.c.id == after_id)
        after = (sa.func.coalesce(after_transaction.scalar_subquery(), 0), after_id)
        query = (
            sa.select(*EVENT_COLUMNS)
            .where(
                events.c.run_id == validation.identifier(run_id, "run_id"),
                events.c.transaction_id < self._backend.settled_below(),
                sa.tuple_(*order) > sa.tuple_(*after),
            )
            .order_by(*order)
            .limit(limit)
        )
        return [EventRecord.from_row(row) for row in self._connection.execute(query)]
