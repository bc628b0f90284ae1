"""``run_on_driver``: a statement on the driver's cursor, for the task queue's hot path.

``connection.execute(statement, parameters)`` costs about 30 µs of client time a
statement on the benchmark machine before the driver does anything: an execution
context, the compiled cache's lookup, every bound parameter gathered and processed, the
result's metadata and its rows wrapped. The driver's own ``cursor.execute`` takes about
10 µs. A claim and a completion on SQLite are five statements, so that machinery was a
third of the queue's client time (``bench/README.md``, claim).

``run_on_driver`` compiles a statement once per dialect, schema and parameter names;
each call only puts the values in the compiled order through their types' processors,
runs the SQL on the Connection's DB-API cursor (``on_driver_cursor``: the Connection's
transaction, SQLAlchemy's error wrapping and invalidation), and puts the returned
columns through their result processors. The SQL and the values are the ones
``execute`` would send. An engine with statement listeners (``before_cursor_execute``
or ``after_cursor_execute``: a tracer, a log of statements, a test that watches them)
gets them through SQLAlchemy's ``exec_driver_sql`` instead, so that they see every
statement; ``echo`` does not see the driver's.

Only the hot statements go through here: the task queue's, the recorder's, and the
appends of ``BulkInsert`` (which compiles with ``compile_for_driver`` and sends its
``executemany`` with ``send``). Everything else takes ``execute``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from agentstore.backends import schema_of
from agentstore.backends.base import on_driver_cursor

_Processor = Callable[[Any], Any]


class DriverRows(NamedTuple):
    """What a statement returned: its column names, and its rows as values (processed
    as SQLAlchemy would: ids as ``UUID``, times as aware ``datetime``)."""

    keys: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled for one dialect, schema and set of parameter names, as the
    driver takes it: its SQL, and where each of its parameters goes."""

    sql: str
    names: tuple[str, ...] | None  # a named paramstyle's keys, in ``template``'s order
    template: tuple[Any, ...]  # each parameter's place, the constants filled in
    given: tuple[tuple[int, str, _Processor | None], ...]  # place, key, processor
    made: tuple[tuple[int, str, Callable[[], Any], _Processor | None], ...]  # Python defaults

    def parameters(self, given: Mapping[str, Any]) -> Any:
        """The driver's parameters for one row of ``given`` values, by key."""
        values = list(self.template)
        for place, key, process in self.given:
            value = given[key]
            values[place] = value if process is None else process(value)
        for place, _, make, process in self.made:
            value = make()
            values[place] = value if process is None else process(value)
        return self.driver_row(values)

    def driver_row(self, values: list[Any]) -> Any:
        """``values``, in the compiled order, as the driver's paramstyle takes them."""
        if self.names is None:
            return tuple(values)
        return dict(zip(self.names, values, strict=True))


def compile_for_driver(
    statement: sa.ClauseElement,
    dialect: Dialect,
    schema: str | None,
    given: Collection[str],
    *,
    many: bool = False,
) -> DriverStatement:
    """``statement`` compiled for parameters named ``given`` (for an ``executemany``
    when ``many``). Every other parameter is a constant of the statement or a Python-side
    default (made per row); else ``KeyError``. Expanding and literal parameters, which
    SQLAlchemy renders per call, are refused (``TypeError``)."""
    compiled: Any = statement.compile(
        dialect=dialect,
        column_keys=sorted(given),
        for_executemany=many,
        schema_translate_map={None: schema} if schema is not None else None,
        render_schema_translate=schema is not None,
    )
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise TypeError("compile_for_driver: a statement with expanding or literal parameters")
    defaults = {
        column.key: column.onupdate if column in compiled.update_prefetch else column.default
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch)
    }
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    names = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
    template: list[Any] = []
    from_caller, made = [], []
    for place, name in enumerate(names):
        bind = binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        template.append(None)
        if bind.key in given:
            from_caller.append((place, bind.key, process))
        elif bind.key in defaults:  # a Python-side default or onupdate, made per row
            made.append((place, bind.key, _maker(defaults[bind.key]), process))
        elif bind.callable is None and not bind.required:  # a constant of the statement
            value = bind.effective_value
            template[place] = value if process is None else process(value)
        else:
            raise KeyError(f"compile_for_driver: no value for {bind.key!r}")
    escaped = compiled.escaped_bind_names  # a named style's keys as the SQL spells them
    return DriverStatement(
        sql=str(compiled),
        names=None if compiled.positional else tuple(escaped.get(name, name) for name in names),
        template=tuple(template),
        given=tuple(from_caller),
        made=tuple(made),
    )


def send(
    connection: Connection,
    sql: str,
    parameters: Any,
    *,
    many: bool = False,
    returns_rows: bool = False,
    describe: bool = False,
) -> tuple[Any, list[Any]]:
    """``sql`` with the driver's ``parameters`` (a list of them, ``executemany``, when
    ``many``) in ``connection``'s transaction: as ``on_driver_cursor``, the cursor's
    description if ``describe`` and the rows if ``returns_rows``."""
    watched = connection.dispatch
    if watched.before_cursor_execute or watched.after_cursor_execute:
        # Someone watches statements (a tracer, a log, a test): SQLAlchemy's own path,
        # where they see this one too. The same SQL and values.
        result = connection.exec_driver_sql(sql, parameters)
        if not returns_rows:
            return None, []
        return result.cursor.description if describe else None, list(result.fetchall())
    return on_driver_cursor(
        connection, sql, parameters, many=many, returns_rows=returns_rows, describe=describe
    )


@dataclass(slots=True)
class _Plan:
    """What ``run_on_driver`` keeps of a statement, by dialect, schema and names."""

    statement: sa.ClauseElement  # the one compiled (the cache's keys are ids)
    compiled: DriverStatement
    keys: tuple[str, ...]  # the returned columns' names
    types: tuple[Any, ...]  # and types
    # The returned columns' result processors, as SQLAlchemy picks them: by type and,
    # on some drivers, by the type code the cursor describes (psycopg's numeric types).
    # Found at the first run that returns rows: the same SQL returns the same types.
    results: tuple[tuple[int, _Processor], ...] | None = None

    def rows(self, dialect: Dialect, description: Any, fetched: list[Any]) -> DriverRows:
        """``fetched`` as values; ``description`` is the cursor's at the first run
        (None after)."""
        if self.results is None:
            self.results = tuple(
                (place, process)
                for place, (type_, described) in enumerate(
                    zip(self.types, description, strict=True)
                )
                if (process := type_.dialect_impl(dialect).result_processor(dialect, described[1]))
                is not None
            )
        if not self.results:
            return DriverRows(self.keys, [tuple(row) for row in fetched])
        processed = []
        for row in fetched:
            values = list(row)
            for place, process in self.results:
                values[place] = process(values[place])
            processed.append(tuple(values))
        return DriverRows(self.keys, processed)


# By dialect, then (the statement's id, the schema, the parameters' names).
_PLANS: weakref.WeakKeyDictionary[Dialect, dict[tuple[int, str | None, frozenset[str]], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def run_on_driver(
    connection: Connection, statement: sa.ClauseElement, parameters: Mapping[str, Any]
) -> DriverRows:
    """Run ``statement`` with ``parameters`` (one row's, by bind name) in
    ``connection``'s transaction; its rows, if it returns any. The statement is one the
    repositories keep for good (its plan is kept for it)."""
    dialect = connection.dialect
    schema = schema_of(connection)
    key = (id(statement), schema, frozenset(parameters))
    plans = _PLANS.setdefault(dialect, {})
    plan = plans.get(key)
    if plan is None or plan.statement is not statement:
        returned = statement.exported_columns if isinstance(statement, sa.ReturnsRows) else ()
        plan = plans[key] = _Plan(
            statement,
            compile_for_driver(statement, dialect, schema, key[2]),
            keys=tuple(column.key for column in returned),
            types=tuple(column.type for column in returned),
        )
    if not plan.keys:  # a statement that returns no rows
        send(connection, plan.compiled.sql, plan.compiled.parameters(parameters))
        return DriverRows(plan.keys, [])
    description, fetched = send(
        connection,
        plan.compiled.sql,
        plan.compiled.parameters(parameters),
        returns_rows=True,
        describe=plan.results is None,  # only the first run looks at the types
    )
    return plan.rows(dialect, description, fetched)


def _maker(default: Any) -> Callable[[], Any]:
    """A column's Python-side default as a function of nothing (ours take no context)."""
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        make = default.arg  # SQLAlchemy's wrapper, which takes a context and ignores it
        return lambda: make(None)
    raise TypeError(f"run_on_driver: a default that is neither a value nor a function: {default}")
