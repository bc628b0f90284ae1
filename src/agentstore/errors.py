"""The one error hierarchy of agentstore.

Every public call raises these and only these: raw driver exceptions are translated at the
boundary (see ``agentstore.boundary``), and a call that raises leaves the database unchanged.
"""

from __future__ import annotations


class AgentStoreError(Exception):
    """Base class of every error agentstore raises."""


class ValidationError(AgentStoreError, ValueError):
    """The input was refused before anything was written: a bad status, a naive datetime,
    a payload that is not JSON, an empty required text, an over-long field, a bad cursor."""


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
    """The database URL names a backend or a version agentstore cannot run on."""


class StoreUnavailableError(AgentStoreError):
    """The database could not be reached, or kept timing out, or is not migrated."""
