"""``BulkInsert`` writes what ``connection.execute(insert, rows)`` writes, in one
``executemany``, on both dialects: per-row values, values shared by a call, defaults,
the statement's own constants; and it refuses rows or statements it cannot write
whole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from agentstore.backends import backend_for
from agentstore.bulk_insert import BulkInsert
from agentstore.models import Execution, ExecutionToolCall, core_table
from agentstore.orchestrator.common import EVENTS, insert_events_statement
from agentstore.types import SerializedJSON, uuid7
from tests.foundation.conftest import insert_run

EVENT_COLUMNS = ("run_id", "source", "kind", "message", "payload", "idempotency_key")
TOOL_CALLS = core_table(ExecutionToolCall)


def bulk_events(engine: Engine) -> BulkInsert:
    return BulkInsert(
        insert_events_statement(backend_for(engine.url)),
        EVENT_COLUMNS,
        shared=("ts",),
        defaults={"payload": {}, "idempotency_key": None},
    )


def stored_events(connection: Connection, run_id: uuid.UUID) -> list[tuple[Any, ...]]:
    columns = [EVENTS.c[name] for name in (*EVENT_COLUMNS[1:], "ts", "transaction_id")]
    query = sa.select(*columns).where(EVENTS.c.run_id == run_id).order_by(EVENTS.c.id)
    return [tuple(row) for row in connection.execute(query)]


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent to the driver, and whether it was an ``executemany``."""
    sent: list[tuple[str, bool]] = []

    def record(*args: Any) -> None:
        statement, executemany = args[2], args[5]
        sent.append((statement, executemany))

    sa.event.listen(engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(engine, "before_cursor_execute", record)


def test_rows_are_written_as_sqlalchemy_writes_them_in_one_executemany(
    engine: Engine, statements: list[tuple[str, bool]]
) -> None:
    by_bulk, by_sqlalchemy = insert_run(engine), insert_run(engine)
    when = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    rows: list[dict[str, Any]] = [
        {"source": "worker", "kind": "progress", "message": "naïve → ünïcode", "payload": [1]},
        {"source": "worker", "kind": "done", "message": "", "payload": {"nested": {"a": None}}},
        {"source": "system", "kind": "keyed", "message": "m", "idempotency_key": "k-1"},
        {"source": "system", "kind": "json text", "message": "m", "payload": SerializedJSON("7")},
        {"source": "system", "kind": "text", "message": "m", "payload": "just text"},
    ]
    with engine.begin() as connection:
        del statements[:]
        bulk_events(engine).execute(
            connection, [{"run_id": by_bulk, **row} for row in rows], {"ts": when}
        )
        assert len(statements) == 1 and statements[0][1] is True  # one executemany
        expected = [
            {"run_id": by_sqlalchemy, "payload": {}, "idempotency_key": None, **row, "ts": when}
            for row in rows
        ]
        connection.execute(insert_events_statement(backend_for(engine.url)), expected)

    with engine.connect() as connection:
        written, reference = (
            stored_events(connection, by_bulk),
            stored_events(connection, by_sqlalchemy),
        )
    assert written == reference
    assert [row[3] for row in written] == [[1], {"nested": {"a": None}}, {}, 7, "just text"]
    assert {row[5] for row in written} == {when}


def test_a_value_rows_share_by_object_and_values_of_their_own_are_each_written(
    engine: Engine,
) -> None:
    """A value that is the previous row's own object is converted once (the cache must
    not leak a value into a row that has another)."""
    with engine.begin() as connection:
        execution_id = connection.execute(
            sa.insert(Execution)
            .values(scope_id="s", code="print(1)", status="running", started_at=datetime.now(UTC))
            .returning(Execution.id)
        ).scalar_one()
    insert = BulkInsert(
        sa.insert(TOOL_CALLS),
        ("id", "tool_path", "namespace", "args", "started_at"),
        shared=("scope_id", "execution_id", "status"),
    )
    shared_start = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [shared_start, shared_start, shared_start + timedelta(seconds=1), shared_start]
    args: dict[str, Any] = {"page": 1}
    rows = [
        {"id": uuid7(), "tool_path": f"t.p{n}", "namespace": "t", "args": args, "started_at": at}
        for n, at in enumerate(starts)
    ]
    rows[1]["args"] = {"page": 2}
    shared = {"scope_id": "s", "execution_id": execution_id, "status": "running"}
    with engine.begin() as connection:
        insert.execute(connection, rows, shared)
        stored = connection.execute(
            sa.select(TOOL_CALLS.c.id, TOOL_CALLS.c.args, TOOL_CALLS.c.started_at)
            .where(TOOL_CALLS.c.execution_id == execution_id)
            .order_by(TOOL_CALLS.c.tool_path)
        ).all()
    assert [tuple(row) for row in stored] == [
        (row["id"], row["args"], row["started_at"]) for row in rows
    ]


def test_no_rows_send_nothing(engine: Engine, statements: list[tuple[str, bool]]) -> None:
    with engine.begin() as connection:
        del statements[:]
        bulk_events(engine).execute(connection, [], {"ts": datetime.now(UTC)})
    assert [sql for sql, _ in statements if "events" in sql] == []


def test_a_row_without_a_required_column_is_refused_and_nothing_is_written(
    engine: Engine,
) -> None:
    run_id = insert_run(engine)
    rows = [
        {"run_id": run_id, "source": "s", "kind": "k", "message": "m"},
        {"run_id": run_id, "source": "s", "kind": "k"},  # no message, which has no default
    ]
    with pytest.raises(KeyError, match="message"), engine.begin() as connection:
        bulk_events(engine).execute(connection, rows, {"ts": datetime.now(UTC)})
    with engine.connect() as connection:
        assert stored_events(connection, run_id) == []


def test_a_column_with_a_python_side_default_must_be_named(engine: Engine) -> None:
    insert = BulkInsert(insert_events_statement(backend_for(engine.url)), EVENT_COLUMNS)
    row = {"run_id": insert_run(engine), "source": "s", "kind": "k", "message": "m"}
    with pytest.raises(TypeError, match="ts"), engine.begin() as connection:
        insert.execute(connection, [row])


def test_columns_and_defaults_must_be_the_statements(engine: Engine) -> None:
    statement = insert_events_statement(backend_for(engine.url))
    with pytest.raises(TypeError, match="defaults"):
        BulkInsert(statement, ("run_id",), defaults={"payload": {}})
    insert = BulkInsert(statement, ("run_id", "no_such_column"), shared=("ts",))
    with pytest.raises(TypeError, match="no_such_column"), engine.begin() as connection:
        insert.execute(connection, [{"run_id": uuid7(), "no_such_column": 1}], {"ts": None})


def test_a_database_error_comes_wrapped_as_sqlalchemy_wraps_it(engine: Engine) -> None:
    """The boundary translates SQLAlchemy's errors: a row of a missing run is an
    IntegrityError, as through ``connection.execute``."""
    row = {"run_id": uuid.uuid4(), "source": "s", "kind": "k", "message": "m"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        bulk_events(engine).execute(connection, [row], {"ts": datetime.now(UTC)})


def test_the_driver_writes_them_unless_someone_listens_to_statements(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no statement listener the rows go to the driver's cursor, past SQLAlchemy's
    statement path; they are the rows written through it (the test above listens)."""
    on_driver, through_sqlalchemy = insert_run(engine), insert_run(engine)
    when = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {"source": "worker", "kind": "progress", "message": "ünï", "payload": [1]},
        {"source": "system", "kind": "keyed", "message": "m", "idempotency_key": "k-1"},
    ]

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("the rows went through SQLAlchemy's statement path")

    with engine.begin() as connection, monkeypatch.context() as patched:
        patched.setattr(Connection, "execute", refused)
        patched.setattr(Connection, "exec_driver_sql", refused)
        bulk_events(engine).execute(
            connection, [{"run_id": on_driver, **row} for row in rows], {"ts": when}
        )
    listener = lambda *_: None  # noqa: E731 - any listener sends them through SQLAlchemy
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        with engine.begin() as connection:
            bulk_events(engine).execute(
                connection, [{"run_id": through_sqlalchemy, **row} for row in rows], {"ts": when}
            )
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    with engine.connect() as connection:
        written = stored_events(connection, on_driver)
        reference = stored_events(connection, through_sqlalchemy)
    # All but the writing transaction's id, which differs on PostgreSQL.
    assert [row[:-1] for row in written] == [row[:-1] for row in reference]
    assert [row[1] for row in written] == ["progress", "keyed"]
