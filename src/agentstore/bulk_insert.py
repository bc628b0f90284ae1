"""``BulkInsert``: many rows into one table in one ``executemany``, without SQLAlchemy's
per-row parameter processing. Appends (journal events, tool calls) go through it.

``connection.execute(insert, rows)`` makes, for every row, a dict of every bound
parameter and then looks up and runs each one's type processor: on SQLite that was
about a third of an append's client time, more than the driver's ``executemany``
itself. A ``BulkInsert`` compiles its INSERT once per dialect and schema, looks up
its columns' processors once, converts the values every row shares once per call, and
hands the driver one tuple per row (a dict, for a named paramstyle such as psycopg's)
through ``Connection.exec_driver_sql``. That is the SQL and the values ``execute``
would send, on the caller's Connection and in its transaction, with SQLAlchemy's
events and error wrapping; ``bench/append.py`` shows what it buys.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from agentstore.backends import schema_of

_Processor = Callable[[Any], Any] | None


_MISSING: Any = object()  # the default of a column every row must have


@dataclass(frozen=True, slots=True)
class _Plan:
    """The INSERT compiled for one dialect and schema, and where each value goes."""

    sql: str
    names: tuple[str, ...] | None  # a named paramstyle's keys, in ``template``'s order
    template: tuple[Any, ...]  # each parameter's place, the constants filled in
    per_row: tuple[tuple[int, str, Any, _Processor], ...]  # place, key, default, processor
    shared: tuple[tuple[int, str, _Processor], ...]  # place, key, processor

    def parameters(self, rows: Iterable[Mapping[str, Any]], shared: Mapping[str, Any]) -> list[Any]:
        template = list(self.template)
        for place, key, process in self.shared:
            template[place] = shared[key] if process is None else process(shared[key])
        # A value that is the previous row's own object (a batch's one timestamp or
        # run id) is converted once: processors are functions of the value alone.
        seen: list[Any] = [_MISSING] * len(template)
        made: list[Any] = [None] * len(template)
        names = self.names
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
            if names is None:
                converted.append(tuple(values))
            else:
                converted.append(dict(zip(names, values, strict=True)))
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
        connection.exec_driver_sql(plan.sql, plan.parameters(rows, shared or {}))

    def _plan(self, connection: Connection) -> _Plan:
        dialect = connection.dialect
        schema = schema_of(connection)
        plans = self._plans.setdefault(dialect, {})
        plan = plans.get(schema)
        if plan is None:
            plan = plans[schema] = self._compile(dialect, schema)
        return plan

    def _compile(self, dialect: Dialect, schema: str | None) -> _Plan:
        compiled = self._statement.compile(
            dialect=dialect,
            column_keys=[*self._columns, *self._shared],
            for_executemany=True,
            schema_translate_map={None: schema} if schema is not None else None,
            render_schema_translate=schema is not None,
        )
        if compiled.insert_prefetch:  # SQLAlchemy would make these values in Python
            named = ", ".join(column.key for column in compiled.insert_prefetch)
            raise TypeError(f"BulkInsert: name the columns with Python-side defaults: {named}")
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(binds)
        template: list[Any] = []
        per_row, shared = [], []
        for place, name in enumerate(names):
            bind = binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in self._columns:
                per_row.append((place, name, self._defaults.get(name, _MISSING), process))
                template.append(None)
            elif name in self._shared:
                shared.append((place, name, process))
                template.append(None)
            else:  # a constant of the statement, e.g. a literal
                template.append(
                    bind.effective_value if process is None else process(bind.effective_value)
                )
        missing = set(self._columns) - set(names)
        if missing:
            raise TypeError(f"BulkInsert: not columns of the statement: {sorted(missing)}")
        return _Plan(
            sql=str(compiled),
            names=None if compiled.positional else names,
            template=tuple(template),
            per_row=tuple(per_row),
            shared=tuple(shared),
        )
