"""A store in a PostgreSQL schema of its own: every table, index, sequence, function and
the version table live there, created by the migrations; nothing relies on the session's
``search_path`` (here it finds nothing at all, and PgBouncer may reset it). Stores in two
schemas of one database are independent. SQLite has no schemas: it ignores one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

import agentstore
from agentstore import AgentStore, Completion, NewEvent, NewToolCall, TaskDraft
from agentstore.backends.listen import TASKS_CHANNEL, channel
from agentstore.errors import NotFoundError, ValidationError
from agentstore.schema import VERSION_TABLE, revisions
from agentstore.worker import Worker
from tests.foundation.test_migrations import schema_of
from tests.support.faces import BlockingStore

REPO = Path(__file__).resolve().parents[2]
SERVERS = ["postgresql", "pgbouncer"]


@pytest.fixture(params=SERVERS)
def url_without_search_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty PostgreSQL database whose sessions' search path finds no schema, on the
    server or through PgBouncer in transaction mode."""
    databases = request.getfixturevalue(f"{request.param}_databases")
    url = databases.empty()
    server: Any = request.getfixturevalue("postgresql_databases")
    with server.admin.connect() as connection:
        name = make_url(url).database
        connection.exec_driver_sql(f"ALTER DATABASE {name} SET search_path = nowhere")
    yield url
    databases.drop(url)


def opened(url: str, schema: str, face: str) -> Any:
    return (
        AgentStore.open(url, schema=schema) if face == "sync" else BlockingStore(url, schema=schema)
    )


def tables_in(url: str, schema: str) -> set[str]:
    engine = agentstore.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


@pytest.mark.parametrize("face", ["sync", "async"])
def test_two_stores_in_two_schemas_of_one_database_are_independent(
    url_without_search_path: str, face: str
) -> None:
    url = url_without_search_path
    with opened(url, "tenant_a", face) as a, opened(url, "tenant_b", face) as b:
        a.migrate()
        b.migrate()
        assert revisions(url, schema="tenant_a")[0] == revisions(url, schema="tenant_a")[1]
        run_a = a.runs.create("goal a", "/a", "running")
        run_b = b.runs.create("goal b", "/b", "running")
        a.tasks.replace_pending(run_a.id, [TaskDraft(f"a{n}", "o") for n in range(3)])
        b.tasks.replace_pending(run_b.id, [TaskDraft(f"b{n}", "o") for n in range(2)])

        claimed_a = a.tasks.claim_next("w", lease=timedelta(minutes=1), limit=10)
        assert sorted(t.title for t in claimed_a) == ["a0", "a1", "a2"]
        first = claimed_a[0]
        handoff = a.tasks.complete_and_claim(
            first.id, "done", attempt=first.attempt, worker="w", limit=10
        )
        assert handoff.completed is not None and handoff.claimed == []
        assert [t.title for t in b.tasks.claim_next("w", limit=10)] == ["b0", "b1"]

        assert [r.id for r in a.runs.list().items] == [run_a.id]
        with pytest.raises(NotFoundError):
            b.runs.get(run_a.id)
        kinds_a = [e.kind for e in a.events.list(run_a.id)]
        assert kinds_a.count("task_completed") == 1
        assert "task_completed" not in [e.kind for e in b.events.list(run_b.id)]
        rest = [Completion(t.id, "done", t.attempt) for t in claimed_a[1:]]
        batch = a.tasks.complete_many(rest, worker="w", limit=10)
        assert [t.title for t in batch.completed] == ["a1", "a2"] and batch.claimed == []
        assert [e.kind for e in a.events.list(run_a.id)].count("task_completed") == 3

        # Appends go through ``BulkInsert``'s own compiled statements: one per schema.
        a.events.add_many([NewEvent(run_a.id, "w", "note", "in a", {"n": n}) for n in range(3)])
        b.events.add_many([NewEvent(run_b.id, "w", "note", "in b")])
        assert [e.kind for e in a.events.list(run_a.id)].count("note") == 3
        assert [e.kind for e in b.events.list(run_b.id)].count("note") == 1
        execution_a = a.executions.create("scope", "print(1)")
        b.executions.create("scope", "print(2)")
        a.executions.record_tool_calls("scope", execution_a.id, [NewToolCall("t.x", {})] * 2)
        assert a.executions.get("scope", execution_a.id).execution.tool_call_count == 2
        assert b.executions.sweep(timedelta(0)) == 1
        assert a.executions.sweepable(timedelta(0)) == 1

    tables = set(agentstore.models.Base.metadata.tables) | {VERSION_TABLE}
    assert tables_in(url, "tenant_a") == tables_in(url, "tenant_b") == tables
    assert tables_in(url, "public") == set()


def test_a_store_in_a_schema_is_woken_by_its_own_notifications_only(
    postgresql_databases: Any,
) -> None:
    url = postgresql_databases.empty()
    with AgentStore.open(url, schema="tenant_a") as a, AgentStore.open(url, schema="tenant_b") as b:
        a.migrate()
        b.migrate()
        listener = a.backend.listener(a.engine.url, (channel(TASKS_CHANNEL, a.schema),))
        assert listener is not None
        try:
            assert listener.wait(0.01) == []  # connected and listening
            run_b = b.runs.create("b", "/b", "running")
            b.tasks.replace_pending(run_b.id, [TaskDraft("b", "o")])
            assert listener.wait(0.5) == []
            run_a = a.runs.create("a", "/a", "running")
            a.tasks.replace_pending(run_a.id, [TaskDraft("a", "o")])
            assert listener.wait(5) == [("agentstore_tasks_tenant_a", str(run_a.id))]
        finally:
            listener.close()
    postgresql_databases.drop(url)


def test_the_migrations_in_a_schema_match_the_models_and_the_sqlite_tree(
    url_without_search_path: str, sqlite_databases: Any
) -> None:
    config = agentstore.schema.alembic_config(url_without_search_path, schema="agents")
    command.upgrade(config, "head")
    command.check(config)  # no drift between the models and the schema's tables
    command.downgrade(config, "base")
    assert tables_in(url_without_search_path, "agents") == {VERSION_TABLE}
    command.upgrade(config, "head")
    command.check(config)
    in_schema = schema_of(url_without_search_path, schema="agents")
    assert in_schema == schema_of(sqlite_databases.migrated())


def test_the_command_and_alembic_take_the_schema(postgresql_databases: Any) -> None:
    url = postgresql_databases.empty()

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )

    upgraded = run("alembic", "-x", f"url={url}", "-x", "schema=by_x", "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run("alembic", "-x", f"url={url}", "check", AGENTSTORE_SCHEMA="by_x")
    assert checked.returncode == 0, checked.stderr
    assert run("agentstore", "--url", url, "runs", "list").returncode != 0  # not there
    upgraded = run("agentstore", "--url", url, "--schema", "by_flag", "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    listed = run("agentstore", "--url", url, "runs", "list", "--json", AGENTSTORE_SCHEMA="by_flag")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"] == []
    assert tables_in(url, "by_x") == tables_in(url, "by_flag") != set()
    postgresql_databases.drop(url)


def test_a_host_connection_of_another_schema_is_refused(postgresql_databases: Any) -> None:
    url = postgresql_databases.migrated()
    with AgentStore.open(url, schema="tenant_a") as store, AgentStore.open(url) as default:
        store.migrate()
        with default.engine.connect() as connection, pytest.raises(ValidationError):
            store.on(connection)
        with store.engine.begin() as connection:
            run = store.on(connection).runs.create("in the host's transaction", "/r")
        assert [r.id for r in store.runs.list().items] == [run.id]
        assert default.runs.list().items == []
    postgresql_databases.drop(url)


@pytest.mark.parametrize("name", ["Agents", "a-b", "1st", "a" * 33, "a b"])
def test_a_schema_name_must_be_a_plain_identifier(postgresql_databases: Any, name: str) -> None:
    with pytest.raises(ValidationError, match="schema must be"):
        AgentStore.open(postgresql_databases.admin_url, schema=name)


def test_sqlite_ignores_a_schema_with_a_warning(sqlite_databases: Any) -> None:
    url = sqlite_databases.migrated()
    with pytest.warns(UserWarning, match="sqlite has no schemas"):
        store = AgentStore.open(url, schema="agents")
    with store:
        assert store.schema is None
        assert store.runs.create("g", "/r").goal == "g"
    with AgentStore.open(url, schema="main") as store:  # SQLite's own default: silently
        assert store.schema is None


def test_a_worker_drains_a_plan_in_a_schema(url_without_search_path: str) -> None:
    with AgentStore.open(url_without_search_path, schema="tenant_a") as store:
        store.migrate()
        run = store.runs.create("g", "/r", "running")
        store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(5)])
        counters = Worker(store, lambda context: "done", run_id=run.id).run(until_idle=True)
        assert counters.completed == 5
        assert {t.status.value for t in store.tasks.list(run.id)} == {"completed"}
