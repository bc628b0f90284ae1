"""The one error hierarchy of agentstore.

Every public call, in every face (sync, asyncio, host-owned), inside a transaction or
not, raises these and only these: driver exceptions are translated where a call crosses
into the database (see ``agentstore.boundary``), and a call that raises leaves the
database as it was before the call.
"""

from __future__ import annotations

from typing import Any


class AgentStoreError(Exception):
    """Base class of every error agentstore raises."""


class ValidationError(AgentStoreError, ValueError):
    """The input was refused before anything was written: a bad status, a naive datetime,
    a payload that is not JSON, an empty required text, an over-long field, a bad cursor,
    a malformed id, an argument of the wrong type, or a call made the wrong way."""


class NotFoundError(AgentStoreError, LookupError):
    """The row does not exist (or belongs to another tenant scope, which is the same thing)."""


class ConflictError(AgentStoreError):
    """The write would duplicate a row that must be unique, or decide again what is
    decided once (see ``AlreadyDecidedError``)."""


class _RefusedByState(AgentStoreError):
    """A change the row's current state refuses. ``status``: the row's status when it was
    refused; ``attempt``: a task's fencing token then (None for other rows), so that a
    caller can act on the refusal without reading the row back."""

    def __init__(self, message: str, *, status: str, attempt: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.attempt = attempt

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields across processes
        return (_rebuild, (type(self), str(self), self.status, self.attempt))


def _rebuild(
    cls: type[_RefusedByState], message: str, status: str, attempt: int | None
) -> _RefusedByState:
    return cls(message, status=status, attempt=attempt)


class InvalidTransitionError(_RefusedByState):
    """The row exists but its current status (``status``) does not allow this change."""


class AlreadyDecidedError(ConflictError, InvalidTransitionError):
    """The interaction was decided already (``status``: resolved, cancelled or expired)
    and this call would decide it otherwise: each is decided once. A ``ConflictError``,
    and an ``InvalidTransitionError`` too, as callers written before it caught."""


class StaleClaimError(_RefusedByState):
    """A fencing token (a task's ``attempt``) no longer matches: the task was requeued,
    abandoned or claimed again since the caller claimed it (``status`` and ``attempt``:
    where the task is now)."""


class UnsupportedDatabaseError(AgentStoreError):
    """The database URL, driver or engine is one agentstore cannot run on."""


class NotMigratedError(AgentStoreError):
    """The database lacks agentstore's tables (or has an older schema): run
    ``agentstore db upgrade`` (or ``store.migrate()``)."""


class StoreUnavailableError(AgentStoreError):
    """The database could not be reached or answered with a failure: the connection was
    lost, a timeout, a lock that could not be had, a deadlock.

    ``retryable`` says whether the same call may succeed if made again (the cause was
    transient: a lost connection, a busy database, a deadlock), as opposed to a failure
    that will repeat (a refused login, a missing database file).

    ``maybe_committed`` says the connection was lost while the write was committing (or,
    for a single-statement write, running), so the client cannot know whether it took
    effect: read back, or retry a call that is safe to repeat (see the README's rule).
    False means nothing of the call was committed.
    """

    def __init__(
        self, message: str, *, retryable: bool = False, maybe_committed: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.maybe_committed = maybe_committed

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields across processes
        return (_unavailable, (str(self), self.retryable, self.maybe_committed))


def _unavailable(message: str, retryable: bool, maybe_committed: bool) -> StoreUnavailableError:
    return StoreUnavailableError(message, retryable=retryable, maybe_committed=maybe_committed)
