"""``run_on_driver`` sends what ``connection.execute`` sends and gives back the values it
would, on both dialects: the caller's values through their types, the statement's
constants, Python-side defaults made per call, returned columns through their result
types; database errors come out as SQLAlchemy's; a statement listener sees it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from agentstore.backends import backend_for
from agentstore.driver_statements import run_on_driver
from agentstore.orchestrator.task_statements import ATTEMPTS, TASK_COLUMNS, TASKS, statements
from tests.foundation.conftest import insert_run

# An UPDATE of a task setting values of several types (text, a float, a JSON list), a
# constant of the statement's own (a bound literal), and ``updated_at`` (its Python-side
# ``onupdate``), returning every column.
EDIT = (
    sa.update(TASKS)
    .where(TASKS.c.id == sa.bindparam("task_id"))
    .values(
        title=sa.bindparam("new_title"),
        retry_delay_seconds=sa.bindparam("delay"),
        allowed_paths=sa.bindparam("paths", type_=TASKS.c.allowed_paths.type),
        status=sa.literal("blocked"),
    )
    .returning(*TASK_COLUMNS)
)
CHANGES = {"new_title": "naïve → ünïcode", "delay": 2.5, "paths": ["src/a.py", "docs/"]}


def insert_task(connection: Connection, run_id: uuid.UUID, position: int) -> uuid.UUID:
    values = {"run_id": run_id, "title": "t", "objective": "o", "status": "pending"}
    inserted = sa.insert(TASKS).values(**values, position=position).returning(TASKS.c.id)
    task_id: uuid.UUID = connection.execute(inserted).scalar_one()
    return task_id


# What differs between two tasks inserted one after the other and edited alike.
OWN = ("id", "position", "created_at", "available_at", "updated_at")


def shared_values(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in OWN}


def test_a_statement_returns_the_values_execute_returns(engine: Engine) -> None:
    run_id = insert_run(engine)
    with engine.begin() as connection:
        by_driver, by_sqlalchemy = (insert_task(connection, run_id, n) for n in (1, 2))
        before = connection.execute(sa.select(sa.func.max(TASKS.c.updated_at))).scalar_one()
        keys, [row] = run_on_driver(connection, EDIT, {**CHANGES, "task_id": by_driver})
        returned = dict(zip(keys, row, strict=True))
        expected = connection.execute(EDIT, {**CHANGES, "task_id": by_sqlalchemy}).one()
    assert keys == tuple(column.key for column in TASK_COLUMNS)
    assert returned["id"] == by_driver and isinstance(returned["id"], uuid.UUID)
    assert shared_values(returned) == shared_values(expected._asdict())
    assert returned["status"] == "blocked" and returned["allowed_paths"] == CHANGES["paths"]
    updated_at = returned["updated_at"]
    assert isinstance(updated_at, datetime) and updated_at.tzinfo is not None
    assert updated_at >= before  # made by the call, as SQLAlchemy makes it

    with engine.connect() as connection:  # what is stored is the same too
        stored = {
            task.id: task._asdict()
            for task in connection.execute(sa.select(*TASK_COLUMNS).where(TASKS.c.run_id == run_id))
        }
    assert shared_values(stored[by_driver]) == shared_values(stored[by_sqlalchemy])


def test_an_insert_makes_its_python_defaults_each_call(engine: Engine) -> None:
    record = statements(backend_for(engine.url)).record_attempt
    run_id = insert_run(engine)
    with engine.begin() as connection:
        task_id = insert_task(connection, run_id, 1)
        for attempt in (1, 2):
            parameters = {
                "run_id": run_id,
                "task_id": task_id,
                "attempt": attempt,
                "status": "failed",
                "summary": "s",
                "blocker_signature": None,
                "result": {"attempt": attempt},
            }
            assert run_on_driver(connection, record, parameters).rows == []
        rows = connection.execute(
            sa.select(ATTEMPTS.c.id, ATTEMPTS.c.result, ATTEMPTS.c.created_at)
            .where(ATTEMPTS.c.task_id == task_id)
            .order_by(ATTEMPTS.c.attempt)
        ).all()
    assert [row.result for row in rows] == [{"attempt": 1}, {"attempt": 2}]
    assert rows[0].id != rows[1].id  # a new id each call
    assert all(row.created_at is not None for row in rows)


def test_a_database_error_comes_out_as_sqlalchemys_and_leaves_nothing(engine: Engine) -> None:
    record = statements(backend_for(engine.url)).record_attempt
    run_id = insert_run(engine)
    no_such_task = {
        "run_id": run_id,
        "task_id": uuid.uuid4(),
        "attempt": 1,
        "status": "failed",
        "summary": "s",
        "blocker_signature": None,
        "result": {},
    }
    with engine.connect() as connection:
        with pytest.raises(sa.exc.IntegrityError) as raised, connection.begin():
            run_on_driver(connection, record, no_such_task)
        assert raised.value.orig is not None  # the driver's own error, wrapped
        assert not raised.value.connection_invalidated
        assert connection.execute(sa.select(sa.func.count()).select_from(ATTEMPTS)).scalar() == 0


def test_the_driver_runs_it_unless_someone_listens_to_statements(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = insert_run(engine)
    with engine.begin() as connection:
        task_id = insert_task(connection, run_id, 1)

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("the statement went through SQLAlchemy's statement path")

    with engine.begin() as connection, monkeypatch.context() as patched:
        patched.setattr(Connection, "execute", refused)
        patched.setattr(Connection, "exec_driver_sql", refused)
        unheard = run_on_driver(connection, EDIT, {**CHANGES, "task_id": task_id})

    seen: list[str] = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731 - (conn, cursor, sql, ...)
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        with engine.begin() as connection:
            heard = run_on_driver(connection, EDIT, {**CHANGES, "task_id": task_id})
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("UPDATE")
    assert heard.keys == unheard.keys
    [before], [after] = unheard.rows, heard.rows
    updated = heard.keys.index("updated_at")
    assert before[:updated] == after[:updated]  # all but the time of the edit
    assert before[updated] <= after[updated]


def test_it_refuses_what_it_cannot_send_whole(engine: Engine) -> None:
    run_id = insert_run(engine)
    expanding = sa.select(TASKS.c.id).where(TASKS.c.id.in_(sa.bindparam("ids", expanding=True)))
    with engine.begin() as connection:
        task_id = insert_task(connection, run_id, 1)
        with pytest.raises(TypeError, match="expanding"):
            run_on_driver(connection, expanding, {"ids": [task_id]})
        with pytest.raises(KeyError, match="new_title"):
            run_on_driver(connection, EDIT, {"task_id": task_id, "delay": 1.0, "paths": []})
