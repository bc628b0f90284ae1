"""Interaction deadlines and decide-once: a question asked with ``expires_in`` is
``expired`` once its deadline (on the database's clock) passes unanswered, by
``expire_interactions`` or by the first read that meets it, and its execution goes on or
fails as the asker chose; every question is decided once."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, ExecutionStatus, InteractionStatus, OnExpiry
from agentstore.errors import (
    AlreadyDecidedError,
    ConflictError,
    InvalidTransitionError,
    ValidationError,
)
from agentstore.models import ExecutionInteraction
from tests.orchestrator.test_tasks import refused
from tests.support.databases import DIALECTS
from tests.support.state import dump

# SQLite and PostgreSQL only: PgBouncer passes deadline rules through as they are, and the
# pooled paths (transactions, autocommit steps, retries) are held by the other suites.
pytestmark = pytest.mark.parametrize("dialect", DIALECTS, indirect=True)

SCOPE = "tenant-1"
DUE = timedelta(0)  # a deadline that has passed by the time anything reads it
LATER = timedelta(hours=1)


def stored_status(store: AgentStore, question_id: uuid.UUID) -> str:
    """The question's status as the table holds it (no read of ours expires anything)."""
    with store.engine.connect() as connection:
        return str(
            connection.execute(
                sa.select(ExecutionInteraction.status).where(ExecutionInteraction.id == question_id)
            ).scalar_one()
        )


def ask(store: AgentStore, expires_in: timedelta | None, on_expiry: str = "continue") -> Any:
    execution = store.executions.create(SCOPE, "x")
    return store.executions.request_interaction(
        SCOPE, execution.id, "approve", expires_in=expires_in, on_expiry=on_expiry
    )


def test_the_deadline_is_on_the_database_clock(store: AgentStore) -> None:
    def database_now() -> Any:
        with store.engine.connect() as connection:
            return connection.execute(sa.select(store.backend.clock())).scalar_one()

    before = database_now()
    asked = ask(store, LATER, "fail")
    after = database_now()
    assert before + LATER <= asked.expires_at <= after + LATER
    assert asked.on_expiry is OnExpiry.FAIL and asked.status is InteractionStatus.PENDING
    plain = ask(store, None)
    assert (plain.expires_at, plain.on_expiry) == (None, OnExpiry.CONTINUE)


@pytest.mark.parametrize(
    "arguments",
    [
        {"expires_in": timedelta(seconds=-1)},
        {"expires_in": 30},
        {"expires_in": timedelta(days=365 * 200)},
        {"expires_in": LATER, "on_expiry": "explode"},
        {"on_expiry": "fail"},  # what would it fail after?
    ],
    ids=repr,
)
def test_a_bad_deadline_is_refused(store: AgentStore, arguments: dict[str, Any]) -> None:
    execution = store.executions.create(SCOPE, "x")
    refused(
        store,
        ValidationError,
        lambda: store.executions.request_interaction(SCOPE, execution.id, "form", **arguments),
    )


def test_expire_interactions_expires_what_is_due_and_resumes_its_execution(
    store: AgentStore,
) -> None:
    due, later = ask(store, DUE), ask(store, LATER)
    assert store.executions.expire_interactions() == 1
    assert store.executions.expire_interactions() == 0
    assert stored_status(store, due.id) == "expired"
    assert stored_status(store, later.id) == "pending"
    resumed = store.executions.get(SCOPE, due.execution_id)
    assert resumed.execution.status is ExecutionStatus.RUNNING
    assert resumed.pending_interaction is None
    waiting = store.executions.get(SCOPE, later.execution_id)
    assert waiting.execution.status is ExecutionStatus.WAITING_FOR_INTERACTION


def test_on_expiry_fail_ends_the_execution_at_the_deadline_and_cancels_its_other_questions(
    store: AgentStore,
) -> None:
    execution = store.executions.create(SCOPE, "x")
    other = store.executions.request_interaction(SCOPE, execution.id, "form")
    due = store.executions.request_interaction(
        SCOPE, execution.id, "approve", expires_in=DUE, on_expiry="fail"
    )
    assert store.executions.expire_interactions() == 1
    failed = store.executions.get(SCOPE, execution.id)
    assert failed.execution.status is ExecutionStatus.FAILED
    assert failed.execution.completed_at == due.expires_at
    assert failed.execution.duration_ms is not None
    assert str(due.id) in (failed.execution.error_text or "")
    assert failed.pending_interaction is None
    statuses = {i.id: i.status for i in store.executions.list_interactions(SCOPE, execution.id)}
    assert statuses == {other.id: "cancelled", due.id: "expired"}


def test_on_expiry_continue_waits_for_the_other_pending_questions(store: AgentStore) -> None:
    execution = store.executions.create(SCOPE, "x")
    store.executions.request_interaction(SCOPE, execution.id, "approve", expires_in=DUE)
    other = store.executions.request_interaction(SCOPE, execution.id, "form")
    assert store.executions.expire_interactions() == 1
    view = store.executions.get(SCOPE, execution.id)
    assert view.execution.status is ExecutionStatus.WAITING_FOR_INTERACTION
    assert view.pending_interaction is not None and view.pending_interaction.id == other.id
    store.executions.resolve_interaction(SCOPE, other.id, {"ok": True})
    assert store.executions.get(SCOPE, execution.id).execution.status is ExecutionStatus.RUNNING


def test_an_execution_that_ended_keeps_its_own_end(store: AgentStore) -> None:
    due = ask(store, DUE, "fail")
    store.executions.finish(SCOPE, due.execution_id, "completed", result=1)
    assert store.executions.expire_interactions() == 1
    done = store.executions.get(SCOPE, due.execution_id).execution
    assert (done.status, done.result, done.error_text) == (ExecutionStatus.COMPLETED, 1, None)


def test_expire_interactions_goes_by_scope_and_in_batches(store: AgentStore) -> None:
    for scope, count in (("a", 5), ("b", 2)):
        for _ in range(count):
            execution = store.executions.create(scope, "x")
            store.executions.request_interaction(scope, execution.id, "form", expires_in=DUE)
    assert store.executions.expire_interactions(scope_id="a", batch_size=2) == 5
    assert store.executions.list_waiting("b", limit=10) == []  # the read expires b's too
    assert store.executions.expire_interactions(batch_size=2) == 0


def test_expire_interactions_refuses_a_bad_batch(store: AgentStore) -> None:
    ask(store, DUE)
    for arguments in ({"batch_size": 0}, {"batch_size": 10**6}, {"scope_id": ""}):
        refused(
            store, ValidationError, lambda a=arguments: store.executions.expire_interactions(**a)
        )


def test_a_short_deadline_passes_and_the_question_expires(store: AgentStore) -> None:
    asked = ask(store, timedelta(milliseconds=200))
    expired = 0
    for _ in range(600):  # the database decides when the deadline has passed
        expired += store.executions.expire_interactions(scope_id=SCOPE)
        if expired:
            break
        time.sleep(0.05)
    assert expired == 1
    assert stored_status(store, asked.id) == "expired"


READS = {
    "get": lambda store, q: store.executions.get(SCOPE, q.execution_id),
    "list_interactions": lambda store, q: store.executions.list_interactions(SCOPE, q.execution_id),
    "list_waiting": lambda store, q: store.executions.list_waiting(SCOPE),
    "inbox": lambda store, q: store.executions.inbox(SCOPE),
    "inbox of every scope": lambda store, q: store.executions.inbox(),
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("on_expiry", ["continue", "fail"])
def test_a_read_that_meets_a_question_past_its_deadline_expires_it(
    store: AgentStore, read: str, on_expiry: str
) -> None:
    due = ask(store, DUE, on_expiry)
    execution = store.executions.create(SCOPE, "x")  # its question waits, and is listed
    waiting = store.executions.request_interaction(SCOPE, execution.id, "form")
    answer = READS[read](store, due)
    assert stored_status(store, due.id) == "expired"
    ended = store.executions.get(SCOPE, due.execution_id).execution
    expected = ExecutionStatus.FAILED if on_expiry == "fail" else ExecutionStatus.RUNNING
    assert ended.status is expected
    if read == "get":
        assert answer.execution == ended and answer.pending_interaction is None
    elif read == "list_interactions":
        assert [i.status for i in answer] == [InteractionStatus.EXPIRED]
    elif read == "list_waiting":
        assert [view.execution.id for view in answer] == [execution.id]
    else:
        assert [item.interaction.id for item in answer.items] == [waiting.id]


def test_a_question_past_its_deadline_on_a_page_of_waiting_executions_is_expired(
    store: AgentStore,
) -> None:
    """Every execution of the page is checked, not only the first."""
    asked = [ask(store, LATER if n % 2 else DUE) for n in range(6)]
    waiting = store.executions.list_waiting(SCOPE, limit=3)
    assert [view.execution.id for view in waiting] == [q.execution_id for q in asked[1::2]]
    assert [stored_status(store, q.id) for q in asked] == ["expired", "pending"] * 3


def test_resolving_past_the_deadline_is_a_conflict_and_the_question_is_expired(
    store: AgentStore,
) -> None:
    due = ask(store, DUE, "fail")
    refused(store, ConflictError, lambda: store.executions.resolve_interaction(SCOPE, due.id, 1))
    with pytest.raises(AlreadyDecidedError) as late:
        store.executions.resolve_interaction(SCOPE, due.id, cancelled=True)
    assert late.value.status == "expired"
    [expired] = store.executions.list_interactions(SCOPE, due.execution_id)
    assert expired.status is InteractionStatus.EXPIRED
    assert store.executions.get(SCOPE, due.execution_id).execution.status == "failed"
    refused(store, ConflictError, lambda: store.executions.resolve_interaction(SCOPE, due.id, 1))


def test_an_answer_in_time_is_not_undone_by_the_deadline(store: AgentStore) -> None:
    asked = ask(store, LATER, "fail")
    answered = store.executions.resolve_interaction(SCOPE, asked.id, {"ok": True})
    assert answered.status is InteractionStatus.RESOLVED
    assert store.executions.expire_interactions() == 0
    assert store.executions.get(SCOPE, asked.execution_id).execution.status == "running"


@pytest.mark.parametrize("first", ["resolved", "cancelled", "expired"])
def test_a_question_is_decided_once(store: AgentStore, first: str) -> None:
    asked = ask(store, DUE if first == "expired" else LATER)
    if first == "expired":
        assert store.executions.expire_interactions() == 1
        decided = store.executions.list_interactions(SCOPE, asked.execution_id)[0]
    else:
        decided = store.executions.resolve_interaction(
            SCOPE, asked.id, {"ok": True}, cancelled=first == "cancelled"
        )
    for otherwise in (
        lambda: store.executions.resolve_interaction(SCOPE, asked.id, {"ok": False}),
        lambda: store.executions.resolve_interaction(
            SCOPE, asked.id, {"ok": True}, cancelled=first != "cancelled"
        ),
    ):
        refused(store, ConflictError, otherwise)
        with pytest.raises(InvalidTransitionError) as refusal:  # as callers caught before
            otherwise()
        assert refusal.value.status == first
    if first != "expired":  # the same answer again: a retry after a lost reply
        before = dump(store)
        again = store.executions.resolve_interaction(
            SCOPE, asked.id, {"ok": True}, cancelled=first == "cancelled"
        )
        assert again == decided and dump(store) == before


def test_the_recorder_asks_with_a_timeout(store: AgentStore) -> None:
    with store.executions.recording(SCOPE, "needs a person") as rec:
        bad = rec.ask("approve", timeout=30)  # type: ignore[arg-type]
        assert bad is None and rec.faults == 1  # refused, counted, never raised
        question = rec.ask("approve", purpose="deploy?", timeout=DUE, on_expiry="fail")
        assert question is not None and question.expires_at is not None
        assert question.on_expiry is OnExpiry.FAIL
        assert store.executions.expire_interactions() == 1
    failed = store.executions.get(SCOPE, rec.execution_id).execution
    assert failed.status is ExecutionStatus.FAILED
    assert str(question.id) in (failed.error_text or "")


def test_a_read_writes_only_when_it_meets_a_question_past_its_deadline(
    store: AgentStore,
) -> None:
    """Reads run read-only; the one that meets a question to expire is made again as a
    write (once), and a unit's read expires it in the unit."""
    later = ask(store, LATER)
    writes: list[str] = []
    stop = getattr(store, "async_store", store).watch_writes(writes.append)
    store.executions.get(SCOPE, later.execution_id)
    store.executions.inbox()
    store.executions.list_waiting(SCOPE)
    store.executions.list_interactions(SCOPE, later.execution_id)
    assert writes == []
    stop()
    due = ask(store, DUE)
    stop = getattr(store, "async_store", store).watch_writes(writes.append)
    store.executions.get(SCOPE, due.execution_id)
    assert writes == ["get"]
    stop()
    in_unit = ask(store, DUE)
    with store.transaction() as tx:
        assert tx.executions.list_interactions(SCOPE, in_unit.execution_id)[0].status == "expired"
    assert stored_status(store, in_unit.id) == "expired"
