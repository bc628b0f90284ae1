"""``BulkInsert``: many rows into one table in one ``executemany``, without SQLAlchemy's
per-row parameter processing. Appends (journal events, tool calls) go through it.

``connection.execute(insert, rows)`` makes, for every row, a dict of every bound
parameter and then looks up and runs each one's type processor: on SQLite that was
about a third of an append's client time, more than the driver's ``executemany``
itself. A ``BulkInsert`` compiles its INSERT once per dialect and schema
(``driver_statements.compile_for_driver``), converts the values every row shares once
per call, and hands the driver one tuple per row (a dict, for a named paramstyle such
as psycopg's) on the Connection's DB-API cursor (``driver_statements.send``). That is
the SQL and the values ``execute`` would send, on the caller's Connection and in its
transaction, with SQLAlchemy's error wrapping; ``bench/append.py`` shows what it buys.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from agentstore.backends import schema_of
from agentstore.driver_statements import DriverStatement, compile_for_driver, send

_Processor = Callable[[Any], Any] | None


_MISSING: Any = object()  # the default of a column every row must have


@dataclass(frozen=True, slots=True)
class _Plan:
    """The INSERT compiled for one dialect and schema, and where each value goes."""

    compiled: DriverStatement
    per_row: tuple[tuple[int, str, Any, _Processor], ...]  # place, key, default, processor
    shared: tuple[tuple[int, str, _Processor], ...]  # place, key, processor

    def parameters(self, rows: Iterable[Mapping[str, Any]], shared: Mapping[str, Any]) -> list[Any]:
        template = list(self.compiled.template)
        for place, key, process in self.shared:
            template[place] = shared[key] if process is None else process(shared[key])
        # A value that is the previous row's own object (a batch's one timestamp or
        # run id) is converted once: processors are functions of the value alone.
        seen: list[Any] = [_MISSING] * len(template)
        made: list[Any] = [None] * len(template)
        driver_row = self.compiled.driver_row
        converted: list[Any] = []
        for row in rows:
            values = template.copy()
            for place, key, default, process in self.per_row:
                value = row.get(key, default)
                if value is _MISSING:
                    raise KeyError(f"BulkInsert: a row has no {key!r}")
                if process is not None:
                    if value is not seen[place]:
                        seen[place] = value
                        made[place] = process(value)
                    value = made[place]
                values[place] = value
            converted.append(driver_row(values))
        return converted


class BulkInsert:
    """``statement`` (an INSERT of one table) for rows that are mappings of ``columns``
    (a column missing from a row takes its value in ``defaults``, else is an error) and
    ``shared`` columns, one value for every row of a call. Every other column gets its
    server default, so one with a Python-side default must be named (else ``TypeError``
    at the first call)."""

    __slots__ = ("_columns", "_defaults", "_plans", "_shared", "_statement")

    def __init__(
        self,
        statement: sa.Insert,
        columns: Sequence[str],
        shared: Sequence[str] = (),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self._statement = statement
        self._columns = tuple(columns)
        self._shared = tuple(shared)
        self._defaults = dict(defaults or {})
        if not self._defaults.keys() <= set(self._columns):
            raise TypeError("BulkInsert: defaults are for some of the columns")
        self._plans: weakref.WeakKeyDictionary[Dialect, dict[str | None, _Plan]] = (
            weakref.WeakKeyDictionary()
        )

    def execute(
        self,
        connection: Connection,
        rows: Sequence[Mapping[str, Any]],
        shared: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert ``rows`` in ``connection``'s transaction (none: nothing is sent)."""
        if not rows:
            return
        plan = self._plan(connection)
        send(connection, plan.compiled.sql, plan.parameters(rows, shared or {}), many=True)

    def _plan(self, connection: Connection) -> _Plan:
        dialect = connection.dialect
        schema = schema_of(connection)
        plans = self._plans.setdefault(dialect, {})
        plan = plans.get(schema)
        if plan is None:
            plan = plans[schema] = self._compile(dialect, schema)
        return plan

    def _compile(self, dialect: Dialect, schema: str | None) -> _Plan:
        compiled = compile_for_driver(
            self._statement, dialect, schema, (*self._columns, *self._shared), many=True
        )
        if compiled.made:  # SQLAlchemy would make these values in Python, per row
            named = ", ".join(key for _, key, _, _ in compiled.made)
            raise TypeError(f"BulkInsert: name the columns with Python-side defaults: {named}")
        missing = set(self._columns) - {key for _, key, _ in compiled.given}
        if missing:
            raise TypeError(f"BulkInsert: not columns of the statement: {sorted(missing)}")
        return _Plan(
            compiled,
            per_row=tuple(
                (place, key, self._defaults.get(key, _MISSING), process)
                for place, key, process in compiled.given
                if key in self._columns
            ),
            shared=tuple(
                (place, key, process)
                for place, key, process in compiled.given
                if key not in self._columns
            ),
        )
