"""Racing deciders: resolvers, expirers and readers of one question, each on a store of
its own (its own connections; on SQLite its own writer lock, so the database alone
orders them), decide it exactly once, whenever its deadline passes among them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from agentstore import AgentStore, ExecutionStatus, InteractionStatus
from agentstore.errors import AlreadyDecidedError
from agentstore.models import ExecutionInteraction

SCOPE = "race"
RESOLVERS, EXPIRERS, READERS = 3, 2, 1
ROUNDS = 12


def stored(store: AgentStore, question_id: Any) -> Any:
    with store.engine.connect() as connection:
        return connection.execute(
            sa.select(ExecutionInteraction.status, ExecutionInteraction.response).where(
                ExecutionInteraction.id == question_id
            )
        ).one()


def test_each_question_is_decided_once_by_racing_resolvers_expirers_and_readers(
    db_url: str,
) -> None:
    stores = [AgentStore.open(db_url) for _ in range(RESOLVERS + EXPIRERS + READERS)]
    setup = stores[0]
    try:
        for round_number in range(ROUNDS):
            # Deadlines from already past to well after the resolvers start, so that in
            # some rounds the deadline passes while they race.
            deadline = timedelta(milliseconds=4 * round_number)
            on_expiry = "fail" if round_number % 2 else "continue"
            execution = setup.executions.create(SCOPE, f"round {round_number}")
            question = setup.executions.request_interaction(
                SCOPE, execution.id, "approve", expires_in=deadline, on_expiry=on_expiry
            )
            outcomes = race(stores, question.id, execution.id)
            status, response = stored(setup, question.id)
            won = [answer for kind, answer in outcomes if kind == "resolved"]
            expired = sum(answer for kind, answer in outcomes if kind == "expired")
            refused = [answer for kind, answer in outcomes if kind == "refused"]
            after = setup.executions.get(SCOPE, execution.id).execution.status
            if status == "resolved":
                assert len(won) == 1 and response == won[0], outcomes
                assert len(refused) == RESOLVERS - 1 and expired == 0, outcomes
                assert after is ExecutionStatus.RUNNING
            else:
                assert status == "expired" and response is None, outcomes
                assert won == [] and len(refused) == RESOLVERS and expired <= 1, outcomes
                assert after is (
                    ExecutionStatus.FAILED if on_expiry == "fail" else ExecutionStatus.RUNNING
                )
    finally:
        for store in stores:
            store.close()


def race(stores: list[AgentStore], question_id: Any, execution_id: Any) -> list[tuple[str, Any]]:
    """Every contender at once; what each got."""
    outcomes: list[tuple[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def resolver(store: AgentStore, name: str) -> None:
        try:
            record = store.executions.resolve_interaction(SCOPE, question_id, {"by": name})
            outcomes.append(("resolved", record.response))
        except AlreadyDecidedError as refusal:
            outcomes.append(("refused", refusal.status))

    def expirer(store: AgentStore, _name: str) -> None:
        for _ in range(2000):  # until the question is decided, one way or the other
            outcomes.append(("expired", store.executions.expire_interactions(scope_id=SCOPE)))
            if stored(store, question_id).status != "pending":
                return
            time.sleep(0.002)
        raise AssertionError("the question was never decided")

    def reader(store: AgentStore, _name: str) -> None:
        for _ in range(5):
            store.executions.get(SCOPE, execution_id)

    roles: list[Callable[[AgentStore, str], None]] = (
        [resolver] * RESOLVERS + [expirer] * EXPIRERS + [reader] * READERS
    )

    def run(role: Callable[[AgentStore, str], None], store: AgentStore, name: str) -> None:
        start.wait()
        try:
            role(store, name)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(role, store, f"contender {n}"))
        for n, (role, store) in enumerate(zip(roles, stores, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return outcomes


def waiting_for_a_lock(store: AgentStore) -> int:
    """How many sessions of the store's database wait for a row lock (PostgreSQL)."""
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_an_expiry_that_fails_an_execution_waits_for_a_resolver_of_its_other_question(
    sync_store: AgentStore,
) -> None:
    """A resolver locks its question, then its execution. An expirer that fails the
    execution locks its other pending questions (to cancel them) before the execution
    too: it locked the execution first, so with a resolver of another question between
    its two locks, each waited for the other until PostgreSQL broke the deadlock by
    failing one of them. (PostgreSQL: on SQLite writers take turns.)"""
    store = sync_store
    execution = store.executions.create(SCOPE, "two questions")
    due = store.executions.request_interaction(
        SCOPE, execution.id, "approve", expires_in=timedelta(0), on_expiry="fail"
    )
    other = store.executions.request_interaction(SCOPE, execution.id, "form")
    outcomes: list[Any] = []

    def expire() -> None:
        try:
            outcomes.append(store.executions.expire_interactions(scope_id=SCOPE))
        except Exception as exc:
            outcomes.append(exc)

    expirer = threading.Thread(target=expire)
    with store.engine.begin() as host:
        # A resolver of the other question, between its two locks: the question's...
        host.execute(
            sa.select(ExecutionInteraction.id)
            .where(ExecutionInteraction.id == other.id)
            .with_for_update()
        )
        expirer.start()
        deadline = time.monotonic() + 60
        while not waiting_for_a_lock(store):  # the expirer waits for it
            assert time.monotonic() < deadline and expirer.is_alive(), outcomes
            time.sleep(0.01)
        # ...then the execution's (in resolve_interaction, as it resumes it).
        resolved = store.on(host).executions.resolve_interaction(SCOPE, other.id, {"ok": 1})
    expirer.join(60)
    assert outcomes == [1]
    assert resolved.status is InteractionStatus.RESOLVED
    statuses = {q.id: q.status for q in store.executions.list_interactions(SCOPE, execution.id)}
    assert statuses == {due.id: InteractionStatus.EXPIRED, other.id: InteractionStatus.RESOLVED}
    assert store.executions.get(SCOPE, execution.id).execution.status is ExecutionStatus.FAILED
