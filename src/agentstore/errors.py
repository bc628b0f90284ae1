"""The one error hierarchy of agentstore.

Every public call, in every face (sync, asyncio, host-owned), inside a transaction or
not, raises these and only these: driver exceptions are translated where a call crosses
into the database (see ``agentstore.boundary``), and a call that raises leaves the
database as it was before the call.
"""

from __future__ import annotations


class AgentStoreError(Exception):
    """Base class of every error agentstore raises."""


class ValidationError(AgentStoreError, ValueError):
    """The input was refused before anything was written: a bad status, a naive datetime,
    a payload that is not JSON, an empty required text, an over-long field, a bad cursor,
    a malformed id, an argument of the wrong type, or a call made the wrong way."""


class NotFoundError(AgentStoreError, LookupError):
    """The row does not exist (or belongs to another tenant scope, which is the same thing)."""


class ConflictError(AgentStoreError):
    """The write would duplicate a row that must be unique."""


class InvalidTransitionError(AgentStoreError):
    """The row exists but its current status does not allow this change."""


class StaleClaimError(AgentStoreError):
    """A fencing token (an attempt number) no longer matches: the task was requeued,
    abandoned or claimed again since the caller claimed it."""


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
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
