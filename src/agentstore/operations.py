"""The shape every repository shares: operations of one aggregate, run on the
``Connection`` the repository is bound to.

A repository never opens, begins or commits anything; a face decides where its
connection comes from and what transaction surrounds each call (see
``agentstore.boundary``). Each public operation is marked ``@reads`` or ``@writes``:
the faces are generated from these marks (``tools/generate_faces.py``), and a face that
gives every call its own transaction begins a read-only one for ``@reads``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from sqlalchemy.engine import Connection

from agentstore.backends import Backend

F = TypeVar("F", bound=Callable[..., object])
Access = Literal["read", "write"]
ACCESS = "__agentstore_access__"
ONE_STATEMENT = "__agentstore_one_statement__"


class WriteNeeded(Exception):
    """Raised by an operation marked ``@reads`` that, in a read-only transaction, met
    something it must write down before it can answer (an interaction past its deadline,
    which becomes ``expired``). The face makes the same call again as a write: reads stay
    read-only (SQLite: no write lock; PostgreSQL: one snapshot) on every other call, and
    only the rare call that meets such a row pays for a write. Never leaves a face."""


class Repository:
    """Operations bound to one connection (and its database's backend). ``read_only``:
    the face runs this call in a read-only transaction (see ``WriteNeeded``).

    Each repository names its aggregate, the store's attribute whose face runs its
    operations: ``class RunRepository(Repository, aggregate="runs")``. A call's span is
    named by it (``agentstore.runs.create``, see ``agentstore.telemetry``)."""

    __slots__ = ("_backend", "_connection", "_read_only")

    aggregate: ClassVar[str]

    def __init_subclass__(cls, *, aggregate: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if aggregate is not None:
            cls.aggregate = aggregate
        elif not hasattr(cls, "aggregate"):  # a repository's subclass keeps its aggregate
            raise TypeError(f"{cls.__name__} must name its aggregate: aggregate='...'")

    def __init__(
        self, connection: Connection, backend: Backend, *, read_only: bool = False
    ) -> None:
        self._connection = connection
        self._backend = backend
        self._read_only = read_only

    def _write_needed(self) -> None:
        """Before a read writes after all: in a read-only transaction, have the face make
        the call again as a write."""
        if self._read_only:
            raise WriteNeeded


def reads(operation: F) -> F:
    """Mark an operation that only reads: it may run in a read-only transaction."""
    setattr(operation, ACCESS, "read")
    return operation


def writes(operation: F) -> F:
    """Mark an operation that writes."""
    setattr(operation, ACCESS, "write")
    return operation


def writes_in_one_statement(operation: F) -> F:
    """Mark an operation that writes in one statement where the database can
    (``Backend.data_modifying_ctes``), any other statement it runs only reading or
    standing alone (atomic by itself, as a claim after a completion that was refused):
    it needs no transaction around it, so a face that gives each call its own
    transaction runs it in autocommit instead, without BEGIN and COMMIT round trips."""
    setattr(operation, ACCESS, "write")
    setattr(operation, ONE_STATEMENT, True)
    return operation


def in_one_statement(operation: Callable[..., object]) -> bool:
    return getattr(operation, ONE_STATEMENT, False)
