"""A run's journal as Server-Sent Events: what was there, then each event as it is
committed. On PostgreSQL the stream sleeps until the journal's NOTIFY names its run (a
connection of its own LISTENs, as ``agentstore events tail --follow`` does); where the
database cannot notify (SQLite, a pooler in transaction mode) it reads every
``poll_interval`` seconds. A read finds every event after the last one sent, however
late its transaction committed (``events.tail``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import anyio

from agentstore.async_store import AsyncAgentStore
from agentstore.backends.listen import EVENTS_CHANNEL, Listener, channel
from agentstore.errors import StoreUnavailableError
from agentstore.orchestrator import EventRecord
from agentstore.records import plain

#: Events read at once while catching up.
BATCH = 500
#: Seconds of silence after which the stream sends a comment (so that proxies keep it,
#: and a client gone is noticed); with a listener, also when the journal is read anyway
#: (notifications sent while the listener reconnected are lost).
KEEPALIVE = 15.0
#: How long a browser waits before it reconnects (with ``Last-Event-ID``).
RETRY_MS = 2000


def message(event: EventRecord) -> bytes:
    data = json.dumps(plain(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\ndata: {data}\n\n".encode()


async def follow_journal(
    store: AsyncAgentStore,
    run_id: uuid.UUID,
    after: int | None,
    latest: int,
    poll_interval: float,
) -> AsyncIterator[bytes]:
    """The stream's bytes: the run's events after the event ``after`` (None: its
    ``latest`` events), then the new ones, until the client leaves (the server then
    cancels the stream) or the database fails (the stream ends; the browser reconnects
    after ``RETRY_MS`` and goes on from the last event it had)."""
    channels = (channel(EVENTS_CHANNEL, store.schema),)
    listener = store.backend.listener(store.engine.url, channels)
    loop = asyncio.get_running_loop()
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        if listener is not None:
            await _listen(listener)  # before the first read: nothing falls in between
        if after is None:
            events = await store.events.list(run_id, latest)
            for event in events:
                yield message(event)
            after = events[-1].id if events else 0
        sent_at = loop.time()
        while True:
            events = await store.events.tail(run_id, after_id=after, limit=BATCH)
            for event in events:
                yield message(event)
            if events:
                after, sent_at = events[-1].id, loop.time()
            if len(events) == BATCH:
                continue  # catching up: read on at once
            if loop.time() - sent_at >= KEEPALIVE:
                yield b": keepalive\n\n"
                sent_at = loop.time()
            await _journal_may_have_grown(listener, str(run_id), poll_interval)
    except StoreUnavailableError:
        return  # the browser reconnects, from its Last-Event-ID
    finally:
        if listener is not None:
            with anyio.CancelScope(shield=True):  # closed even as the stream is cancelled
                await listener.aclose()


async def _listen(listener: Listener) -> None:
    """Connect and LISTEN now; notifications wait for the next ``wait_async``."""
    # Failing, it is read every poll_interval until it listens again.
    with contextlib.suppress(StoreUnavailableError):
        await listener.wait_async(0.0)


async def _journal_may_have_grown(
    listener: Listener | None, run_key: str, poll_interval: float
) -> None:
    """Return once the run's journal may have grown: a notification names it, or the
    time to read anyway has come."""
    if listener is None:
        await asyncio.sleep(poll_interval)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KEEPALIVE
    while (left := deadline - loop.time()) > 0:
        try:
            notified = await listener.wait_async(left)
        except StoreUnavailableError:  # listen again on the next wait; read meanwhile
            await asyncio.sleep(poll_interval)
            return
        if any(payload == run_key for _, payload in notified):
            return
