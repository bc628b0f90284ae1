"""PostgreSQL's LISTEN, for waking at once instead of polling.

Triggers (migration 0005) NOTIFY in the writing transaction; a ``Listener`` holds a
connection of its own, outside the pool and in autocommit, LISTENing on some channels.
LISTEN needs a session of its own: through PgBouncer in transaction mode it does not
work, and the caller polls instead (``Worker(listen=False)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentstore.errors import StoreUnavailableError

if TYPE_CHECKING:  # imported where used: this module's names are needed without psycopg
    import psycopg

#: A run id (work may be there to claim), or ``cancel <task id>`` (a held task was
#: cancelled: its holder should heartbeat now).
TASKS_CHANNEL = "agentstore_tasks"
#: A run id: the run's journal grew.
EVENTS_CHANNEL = "agentstore_events"

Notification = tuple[str, str]  # (channel, payload)


def channel(name: str, schema: str | None) -> str:
    """The channel ``name`` of a store in ``schema`` (None: the default schema): a
    store in a schema of its own notifies on channels of its own."""
    return name if schema is None else f"{name}_{schema}"


class Listener:
    """LISTENs on ``channels``; ``wait``/``wait_async`` return the next notifications
    (or none after ``timeout`` seconds). A lost connection raises
    ``StoreUnavailableError``; the next wait connects again (notifications sent in
    between are lost: callers also poll, rarely)."""

    def __init__(self, connect_args: Mapping[str, Any], channels: tuple[str, ...]) -> None:
        self._connect_args = connect_args
        self._channels = channels
        self._sync: psycopg.Connection[Any] | None = None
        self._async: psycopg.AsyncConnection[Any] | None = None

    def _listen_sql(self) -> list[str]:
        return [f"LISTEN {channel}" for channel in self._channels]

    def wait(self, timeout: float) -> list[Notification]:
        import psycopg

        try:
            if self._sync is None or self._sync.closed:
                self._sync = psycopg.Connection.connect(**self._connect_args, autocommit=True)
                for sql in self._listen_sql():
                    self._sync.execute(sql)
            return [
                (n.channel, n.payload) for n in self._sync.notifies(timeout=timeout, stop_after=1)
            ]
        except psycopg.Error as exc:
            self.close()
            raise StoreUnavailableError(f"listening failed: {exc}", retryable=True) from exc

    async def wait_async(self, timeout: float) -> list[Notification]:
        import psycopg

        try:
            if self._async is None or self._async.closed:
                self._async = await psycopg.AsyncConnection.connect(
                    **self._connect_args, autocommit=True
                )
                for sql in self._listen_sql():
                    await self._async.execute(sql)
            found = self._async.notifies(timeout=timeout, stop_after=1)
            return [(n.channel, n.payload) async for n in found]
        except psycopg.Error as exc:
            await self.aclose()
            raise StoreUnavailableError(f"listening failed: {exc}", retryable=True) from exc

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None
