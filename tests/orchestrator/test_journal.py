"""Agent state, attempts, events, artifacts, approvals, checkpoints; store transactions;
one store shared by many threads."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

import pytest

from agentstore import AgentStore, NewEvent, RunRecord
from agentstore.errors import ConflictError, NotFoundError, ValidationError
from tests.orchestrator.conftest import claimed_times
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump


def test_agent_state_save_is_an_upsert(store: AgentStore, run: RunRecord) -> None:
    assert store.agents.get(run.id, "strategy") is None
    store.agents.save(run.id, "strategy", session_id="s1", turns=1)
    saved = store.agents.save(run.id, "strategy", session_id="s2", turns=2, rotation_count=1)
    assert (saved.session_id, saved.turns, saved.rotation_count) == ("s2", 2, 1)
    assert store.agents.get(run.id, "strategy") == saved
    store.agents.save(run.id, "checker")
    assert [a.role for a in store.agents.list(run.id)] == ["checker", "strategy"]


def test_agent_state_errors(store: AgentStore, run: RunRecord) -> None:
    refused(store, NotFoundError, lambda: store.agents.save(uuid.uuid4(), "strategy"))
    refused(store, ValidationError, lambda: store.agents.save(run.id, ""))
    refused(store, ValidationError, lambda: store.agents.save(run.id, "r" * 65))
    refused(store, ValidationError, lambda: store.agents.save(run.id, "r", turns=-1))


def test_attempts_one_per_task_and_number(store: AgentStore, run: RunRecord) -> None:
    task = claimed_times(store, run, 2)
    store.attempts.add(run.id, task.id, 1, "failed", "crashed", result={"exit": 1})
    second = store.attempts.add(run.id, task.id, 2, "completed", "ok")
    assert store.attempts.latest(task.id) == second
    assert [a.attempt for a in store.attempts.recent(run.id)] == [1, 2]
    refused(store, ConflictError, lambda: store.attempts.add(run.id, task.id, 2, "failed", "x"))
    refused(store, ValidationError, lambda: store.attempts.add(run.id, task.id, 3, "won", "x"))
    refused(
        store, NotFoundError, lambda: store.attempts.add(run.id, uuid.uuid4(), 1, "failed", "x")
    )
    assert store.attempts.latest(uuid.uuid4()) is None


def test_an_attempt_is_only_of_a_claim_of_a_task_of_its_run(
    store: AgentStore, run: RunRecord
) -> None:
    task = claimed_times(store, run, 1)
    other = store.runs.create("another goal", "/repo")
    refused(store, ValidationError, lambda: store.attempts.add(run.id, task.id, 2, "failed", "x"))
    refused(store, ValidationError, lambda: store.attempts.add(other.id, task.id, 1, "failed", "x"))
    assert store.attempts.latest(task.id) is None


def test_recent_attempts_are_the_latest_n_oldest_first(store: AgentStore, run: RunRecord) -> None:
    task = claimed_times(store, run, 15)
    for n in range(1, 16):
        store.attempts.add(run.id, task.id, n, "failed", f"try {n}")
    assert [a.attempt for a in store.attempts.recent(run.id)] == list(range(4, 16))


def test_events_list_the_latest_oldest_first_and_tail_in_order(
    store: AgentStore, run: RunRecord
) -> None:
    first = store.events.add(run.id, "worker", "note", "one", {"n": 1})
    assert (
        store.events.add_many(NewEvent(run.id, "worker", "note", str(n)) for n in range(2, 6)) == 4
    )
    assert [e.message for e in store.events.list(run.id, limit=3)] == ["3", "4", "5"]
    tail = store.events.tail(run.id, after_id=first.id)
    assert [e.message for e in tail] == ["2", "3", "4", "5"]
    assert store.events.tail(run.id, after_id=tail[-1].id) == []
    assert first.payload == {"n": 1}


def test_a_batch_with_one_bad_event_writes_none(store: AgentStore, run: RunRecord) -> None:
    batch = [NewEvent(run.id, "s", "k", "ok"), NewEvent(run.id, "s", "k", "bad", {"x": object()})]
    refused(store, ValidationError, lambda: store.events.add_many(batch))
    other_run = [NewEvent(run.id, "s", "k", "ok"), NewEvent(uuid.uuid4(), "s", "k", "lost")]
    refused(store, NotFoundError, lambda: store.events.add_many(other_run))


def test_event_errors(store: AgentStore, run: RunRecord) -> None:
    refused(store, NotFoundError, lambda: store.events.add(uuid.uuid4(), "s", "k", "m"))
    refused(store, ValidationError, lambda: store.events.add(run.id, "", "k", "m"))
    refused(store, ValidationError, lambda: store.events.add(run.id, "s", "k", "m", {datetime}))


def test_artifacts_filter_by_role(store: AgentStore, run: RunRecord) -> None:
    store.artifacts.add(run.id, "prompt", "/p1", role="strategy", metadata={"tokens": 10})
    store.artifacts.add(run.id, "diff", "/d1", role="implementation")
    store.artifacts.add(run.id, "log", "/l1")
    assert [a.path for a in store.artifacts.list(run.id)] == ["/p1", "/d1", "/l1"]
    assert [a.path for a in store.artifacts.list(run.id, role="strategy")] == ["/p1"]
    assert store.artifacts.list(run.id)[0].metadata == {"tokens": 10}
    refused(store, ValidationError, lambda: store.artifacts.add(run.id, "k", ""))


def test_latest_approval_per_source(store: AgentStore, run: RunRecord) -> None:
    store.approvals.add(run.id, "checker", "rejected", "tests fail")
    latest = store.approvals.add(run.id, "checker", "approved", "green")
    store.approvals.add(run.id, "human", "changes_requested", "naming")
    assert store.approvals.latest(run.id, "checker") == latest
    assert store.approvals.latest(run.id, "nobody") is None
    assert len(store.approvals.list(run.id)) == 3
    refused(store, ValidationError, lambda: store.approvals.add(run.id, "c", "maybe", "?"))


def test_checkpoints(store: AgentStore, run: RunRecord) -> None:
    assert store.checkpoints.latest(run.id) is None
    store.checkpoints.add(run.id, "planning", {"step": 1})
    latest = store.checkpoints.add(run.id, "running", {"step": 2})
    assert store.checkpoints.latest(run.id) == latest
    assert [c.payload for c in store.checkpoints.list(run.id)] == [{"step": 1}, {"step": 2}]
    refused(store, ValidationError, lambda: store.checkpoints.add(run.id, "napping"))


def test_a_transaction_commits_its_calls_together(store: AgentStore, run: RunRecord) -> None:
    with store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "one")
        tx.runs.increment_cycle(run.id)
    assert store.runs.get(run.id).cycle_count == 1
    assert len(store.events.list(run.id)) == 2


def test_an_exception_leaving_a_transaction_rolls_everything_back(
    store: AgentStore, run: RunRecord
) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "one")
        tx.runs.increment_cycle(run.id)
        raise RuntimeError("caller changed its mind")
    assert store.runs.get(run.id).cycle_count == 0
    assert len(store.events.list(run.id)) == 1


def test_a_failed_call_inside_a_transaction_is_undone_alone(
    store: AgentStore, run: RunRecord
) -> None:
    with store.transaction() as tx:
        tx.events.add(run.id, "s", "k", "kept")
        with pytest.raises(NotFoundError):
            tx.events.add(uuid.uuid4(), "s", "k", "refused")
        tx.runs.increment_cycle(run.id)
    assert [e.message for e in store.events.list(run.id)][-1] == "kept"
    assert store.runs.get(run.id).cycle_count == 1


def test_one_store_serves_many_threads(sync_store: AgentStore) -> None:
    store = sync_store
    run = store.runs.create("threads", "/r")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.events.add(run.id, f"thread-{n}", "tick", str(i))
                store.agents.save(run.id, f"role-{n % 3}", turns=i)
                with store.transaction() as tx:
                    tx.runs.increment_cycle(run.id)
                    tx.tasks.list(run.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.runs.get(run.id).cycle_count == 120
    assert len(store.events.list(run.id, limit=1000)) == 121
    assert len(store.agents.list(run.id)) == 3


def test_an_event_appended_again_with_its_key_is_recorded_once(
    store: AgentStore, run: RunRecord
) -> None:
    first = store.events.add(run.id, "w", "note", "once", {"n": 1}, idempotency_key="k1")
    before = dump(store)
    again = store.events.add(run.id, "w", "note", "once", {"n": 1}, idempotency_key="k1")
    assert again == first and first.idempotency_key == "k1" and dump(store) == before
    refused(
        store,
        ConflictError,
        lambda: store.events.add(run.id, "w", "note", "twice", idempotency_key="k1"),
    )
    other = store.runs.create("another", "/repo")  # a key is unique within its run
    assert store.events.add(other.id, "w", "note", "once", idempotency_key="k1").id != first.id


def test_a_retried_batch_appends_only_its_new_events(store: AgentStore, run: RunRecord) -> None:
    batch = [NewEvent(run.id, "w", "note", f"n{n}", idempotency_key=f"k{n}") for n in range(2)]
    assert store.events.add_many(batch) == 2
    longer = [*batch, NewEvent(run.id, "w", "note", "n2", idempotency_key="k2")]
    assert store.events.add_many([*longer, NewEvent(run.id, "w", "note", "no key")]) == 2
    messages = [e.message for e in store.events.list(run.id)]
    assert messages[-4:] == ["n0", "n1", "n2", "no key"] and len(messages) == 5
    changed = [NewEvent(run.id, "w", "note", "other", idempotency_key="k0")]
    refused(store, ConflictError, lambda: store.events.add_many(changed))
