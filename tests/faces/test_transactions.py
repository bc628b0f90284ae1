"""The transaction rule, on both dialects and both faces: inside a unit each call runs in a
savepoint, so a call that raises is undone alone and the unit goes on; the unit commits
exactly what reported success, or raises. Never a block that exits normally having
committed less."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, RunRecord, TaskDraft
from agentstore.errors import (
    AgentStoreError,
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
    ValidationError,
)
from tests.support.postgres import kill_connections


@pytest.fixture
def run(store: AgentStore) -> RunRecord:
    return store.runs.create("transactions", "/repo")


def messages(store: AgentStore, run: RunRecord) -> list[str]:
    """The messages of the events the test wrote (source "s")."""
    return [event.message for event in store.events.list(run.id) if event.source == "s"]


def execute(store: AgentStore, tx: Any, sql: str) -> None:
    """The host's own statement on the unit's connection (sync or asyncio)."""
    result = tx.connection.exec_driver_sql(sql)
    if hasattr(result, "__await__"):
        store.run(result)  # type: ignore[attr-defined]


def add_attempt_twice(tx: Any, run: RunRecord, task_id: uuid.UUID) -> None:
    tx.attempts.add(run.id, task_id, 1, "completed", "again")


FAILING_CALLS: dict[str, tuple[type[AgentStoreError], Callable[[Any, RunRecord, Any], object]]] = {
    # Each is refused by the database itself (a statement error, which on PostgreSQL
    # would abort a transaction without the savepoint), except the malformed id.
    "unknown run (foreign key)": (
        NotFoundError,
        lambda tx, _run, _task: tx.events.add(uuid.uuid4(), "s", "k", "refused"),
    ),
    "malformed id": (ValidationError, lambda tx, _run, _task: tx.runs.get("not-a-uuid")),
    "duplicate attempt (unique)": (
        ConflictError,
        lambda tx, run, task: add_attempt_twice(tx, run, task.id),
    ),
    "unknown execution": (
        NotFoundError,
        lambda tx, _run, _task: tx.executions.record_tool_call("s", uuid.uuid4(), "t"),
    ),
}


@pytest.mark.parametrize("failure", list(FAILING_CALLS))
def test_a_failed_call_is_undone_alone_and_the_unit_commits_what_succeeded(
    store: AgentStore, run: RunRecord, failure: str
) -> None:
    error, failing_call = FAILING_CALLS[failure]
    task = store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])[0]
    store.tasks.claim_next("w", run_id=run.id)
    store.tasks.complete(task.id, "first", attempt=1)  # records attempt 1
    with store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "before")
        with pytest.raises(error):
            failing_call(tx, run, task)
        tx.events.add(run.id, "s", "k", "after")
        tx.runs.increment_cycle(run.id)
    assert messages(store, run) == ["before", "after"]
    assert store.runs.get(run.id).cycle_count == 1


def test_the_reported_silent_loss_commits_both_events(store: AgentStore, run: RunRecord) -> None:
    """The case from the issue: a caught error between two writes lost both on PostgreSQL."""
    with store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "first")
        with pytest.raises(ValidationError):
            tx.runs.get("not-a-uuid")
        tx.events.add(run.id, "s", "k", "second")
    assert messages(store, run) == ["first", "second"]


def test_a_failed_multi_statement_call_leaves_nothing_of_itself(
    store: AgentStore, run: RunRecord
) -> None:
    held = store.tasks.replace_pending(run.id, [TaskDraft("t", "o")])
    bad_plan = [TaskDraft("ok", "o"), TaskDraft("", "empty title")]
    with store.transaction() as tx:
        with pytest.raises(ValidationError):
            tx.tasks.replace_pending(run.id, bad_plan)
        tx.events.add(run.id, "s", "k", "after")
    assert [t.id for t in store.tasks.list(run.id, ["pending"])] == [held[0].id]


def test_an_exception_leaving_the_block_rolls_everything_back(
    store: AgentStore, run: RunRecord
) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "one")
        raise RuntimeError("the host changed its mind")
    assert messages(store, run) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_lock_timeout_on_postgres_is_undone_alone(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    """A statement the server fails mid-transaction (here: it waited too long for a row
    another connection holds) does not abort the unit."""
    other = sa.create_engine(db_url)
    with other.begin() as holder:
        holder.exec_driver_sql(f"SELECT 1 FROM runs WHERE id = '{run.id}' FOR NO KEY UPDATE")
        with store.transaction() as tx:
            execute(store, tx, "SET LOCAL lock_timeout = '100ms'")
            tx.events.add(run.id, "s", "k", "before")
            with pytest.raises(StoreUnavailableError) as refused:
                tx.tasks.replace_pending(run.id, [TaskDraft("t", "o")])  # locks the run row
            assert refused.value.retryable
            tx.events.add(run.id, "s", "k", "after")
    other.dispose()
    assert messages(store, run) == ["before", "after"]
    assert store.tasks.list(run.id) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_unit_the_database_already_failed_raises_instead_of_committing(
    store: AgentStore, run: RunRecord
) -> None:
    """The host's own statement fails outside any savepoint and the host swallows the
    error: PostgreSQL would answer COMMIT with a quiet rollback, so the unit raises."""
    with (
        pytest.raises(StoreUnavailableError, match="nothing of it was committed"),
        store.transaction() as tx,
    ):
        tx.events.add(run.id, "s", "k", "lost")
        with pytest.raises(sa.exc.DBAPIError):
            execute(store, tx, "SELECT 1/0")
    assert messages(store, run) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_unit_whose_connection_was_lost_raises_on_exit(
    store: AgentStore, run: RunRecord, db_url: str
) -> None:
    with pytest.raises(StoreUnavailableError), store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "lost with the connection")
        assert kill_connections(db_url) >= 1
        with pytest.raises(StoreUnavailableError) as lost:
            tx.events.add(run.id, "s", "k", "after")
        assert lost.value.retryable
    assert messages(store, run) == []
    store.events.add(run.id, "s", "k", "the store goes on")
    assert messages(store, run) == ["the store goes on"]


def test_a_write_on_the_store_beside_its_own_unit_is_refused(
    sync_store: AgentStore,
) -> None:
    """It would wait for the unit's locks while the unit waits for it (SQLite's write
    lock; a PostgreSQL row the unit holds): a clear error instead of a hang."""
    run = sync_store.runs.create("g", "/r")
    with sync_store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "in the unit")
        with pytest.raises(ValidationError, match="through the unit"):
            sync_store.events.add(run.id, "s", "k", "beside it")
        assert sync_store.runs.get(run.id).id == run.id  # reads do not wait: allowed
        with pytest.raises(ValidationError, match="through the unit"), sync_store.transaction():
            pass  # a second unit would wait for the first
    sync_store.events.add(run.id, "s", "k", "after it")
    assert [e.message for e in sync_store.events.list(run.id)][1:] == ["in the unit", "after it"]


def test_a_read_sees_one_snapshot_across_its_statements(store: AgentStore, db_url: str) -> None:
    """A snapshot of a run read while another connection commits: the parts agree."""
    run = store.runs.create("snapshot", "/r")
    store.tasks.replace_pending(run.id, [TaskDraft(f"t{n}", "o") for n in range(3)])
    other = sa.create_engine(db_url)
    seen: list[int] = []

    def count_then_commit_elsewhere(*_: Any) -> None:
        with other.begin() as connection:
            connection.exec_driver_sql(
                f"UPDATE tasks SET status = 'abandoned' WHERE run_id = '{run.id.hex}'"
                if store.backend.name == "sqlite"
                else f"UPDATE tasks SET status = 'abandoned' WHERE run_id = '{run.id}'"
            )
        seen.append(1)

    engine = getattr(store, "calls_engine", store.engine)
    sa.event.listen(engine, "after_cursor_execute", count_then_commit_elsewhere, once=True)
    snapshot = store.runs.snapshot(run.id)
    other.dispose()
    assert seen == [1]  # the other writer committed after the snapshot's first read
    assert len(snapshot.tasks["pending"]) == 3  # type: ignore[index]
    assert store.tasks.list(run.id, ["pending"]) == []
