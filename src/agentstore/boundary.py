"""Where public calls cross into the database: one transaction per call (or one savepoint
inside ``store.transaction()``), and the translation of driver errors into
``agentstore.errors``, so no raw driver exception escapes and a failed call changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from agentstore.backends import Backend
from agentstore.errors import AgentStoreError, StoreUnavailableError


class Transactions:
    """Hands each call a connection inside a transaction.

    Outside ``store.transaction()`` every call gets its own transaction, committed when
    the call returns. Inside it, calls share the thread's transaction and each runs in a
    savepoint, so a call that fails is undone alone and the caller may go on.
    """

    def __init__(self, engine: Engine, backend: Backend) -> None:
        self.engine = engine
        self.backend = backend
        self._local = threading.local()

    def _current(self) -> Connection | None:
        return getattr(self._local, "connection", None)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction shared by every call made in it on this thread; nested use
        joins the outer one."""
        current = self._current()
        if current is not None:
            yield current
            return
        with self.translated(), self.engine.connect() as connection, connection.begin():
            self._local.connection = connection
            try:
                yield connection
            finally:
                self._local.connection = None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """The connection for one call that writes."""
        current = self._current()
        if current is None:
            with self.transaction() as connection:
                yield connection
            return
        with self.translated(), current.begin_nested():
            yield current

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """The connection for a call that only reads: one consistent snapshot of the
        database that never waits for writers. Reads nested in it share the snapshot
        (how a run snapshot reads through several repositories); nothing may write in it.
        """
        current = self._current()
        if current is not None:
            yield current
            return
        with (
            self.translated(),
            self.engine.connect() as connection,
            connection.execution_options(**self.backend.read_only_options).begin(),
        ):
            self._local.connection = connection
            try:
                yield connection
            finally:
                self._local.connection = None

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Re-raise database errors as ``agentstore.errors``."""
        try:
            yield
        except AgentStoreError:
            raise
        except sa.exc.StatementError as exc:
            # Our own types raise ValidationError while binding parameters; SQLAlchemy
            # wraps it. Hand back the original.
            if isinstance(exc.orig, AgentStoreError):
                raise exc.orig from None
            if isinstance(exc, sa.exc.DBAPIError):
                raise self.backend.translate_error(exc) from exc
            raise StoreUnavailableError(f"database call failed: {exc}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailableError(f"database call failed: {exc}") from exc
