"""A transition made again after it committed (its reply was lost, the caller retries)
returns the record and writes nothing; a different outcome is still refused, and
changes nothing either."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from agentstore import AgentStore, RunRecord, TaskRecord, TaskStatus
from agentstore.errors import InvalidTransitionError, StaleClaimError
from tests.orchestrator.conftest import drafts
from tests.orchestrator.test_tasks import refused
from tests.support.state import dump

LEASE = timedelta(minutes=5)


def held(store: AgentStore, run: RunRecord) -> TaskRecord:
    store.tasks.replace_pending(run.id, drafts(1, max_attempts=3))
    [task] = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    return task


def repeated(store: AgentStore, call: Callable[[], TaskRecord]) -> None:
    """``call`` succeeds, then made again returns the same task and changes nothing."""
    first = call()
    before = dump(store)
    again = call()
    assert dump(store) == before
    assert again == store.tasks.get(first.id)
    assert (again.status, again.attempt) == (first.status, first.attempt)


ENDINGS: dict[str, Callable[[AgentStore, TaskRecord], TaskRecord]] = {
    "complete": lambda s, t: s.tasks.complete(t.id, "done", attempt=1, result={"n": 1}),
    "block": lambda s, t: s.tasks.block(t.id, "stuck", "needs-key", attempt=1),
    "abandon": lambda s, t: s.tasks.abandon(t.id, "dropped", attempt=1),
    "fail": lambda s, t: s.tasks.fail(t.id, "boom", attempt=1),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_an_ending_made_again_returns_the_task(
    store: AgentStore, run: RunRecord, ending: str
) -> None:
    task = held(store, run)
    repeated(store, lambda: ENDINGS[ending](store, task))


@pytest.mark.parametrize("ending", ENDINGS)
def test_another_ending_of_the_same_attempt_is_refused(
    store: AgentStore, run: RunRecord, ending: str
) -> None:
    task = held(store, run)
    ENDINGS[ending](store, task)
    for other in (name for name in ENDINGS if name != ending):
        before = dump(store)
        with pytest.raises((InvalidTransitionError, StaleClaimError)):
            ENDINGS[other](store, task)
        assert dump(store) == before


def test_the_same_outcome_with_another_summary_is_refused(
    store: AgentStore, run: RunRecord
) -> None:
    task = held(store, run)
    store.tasks.complete(task.id, "done", attempt=1)
    refused(
        store,
        InvalidTransitionError,
        lambda: store.tasks.complete(task.id, "done differently", attempt=1),
    )


def test_a_failure_made_again_after_the_task_moved_on_returns_it(
    store: AgentStore, run: RunRecord
) -> None:
    task = held(store, run)
    store.tasks.fail(task.id, "boom", attempt=1, retry_in=timedelta(0))
    [again] = store.tasks.claim_next("w2", run_id=run.id, lease=LEASE)
    assert again.attempt == 2
    before = dump(store)
    assert store.tasks.fail(task.id, "boom", attempt=1) == store.tasks.get(task.id)
    assert dump(store) == before
    refused(store, StaleClaimError, lambda: store.tasks.fail(task.id, "other", attempt=1))


def test_a_rescued_attempt_is_not_taken_for_a_failure(store: AgentStore, run: RunRecord) -> None:
    store.tasks.replace_pending(run.id, drafts(1))
    [task] = store.tasks.claim_next("w", run_id=run.id, lease=timedelta(milliseconds=1))
    time.sleep(0.05)  # past the lease on the database's clock (a quick reply came sooner)
    store.tasks.requeue_expired()  # the lease ran out: attempt 1 failed, lease lost
    refused(store, StaleClaimError, lambda: store.tasks.fail(task.id, "boom", attempt=1))


def test_complete_and_claim_made_again_hands_back_the_completion(
    store: AgentStore, run: RunRecord
) -> None:
    store.tasks.replace_pending(run.id, drafts(3))
    [task] = store.tasks.claim_next("w", run_id=run.id, lease=LEASE)
    first = store.tasks.complete_and_claim(task.id, "done", attempt=1, worker="w", run_id=run.id)
    assert first.completed is not None and len(first.claimed) == 1
    again = store.tasks.complete_and_claim(task.id, "done", attempt=1, worker="w", run_id=run.id)
    assert again.completed == store.tasks.get(task.id)
    # the retry claims too: the worker did not learn of the first claim
    assert len(again.claimed) == 1 and again.claimed[0].id != first.claimed[0].id
    completions = [e for e in store.events.list(run.id) if e.kind == "task_completed"]
    assert len(completions) == 1


def test_a_cancel_made_again_returns_the_task(store: AgentStore, run: RunRecord) -> None:
    first, second = store.tasks.replace_pending(run.id, drafts(2))
    store.tasks.claim_next("w", run_id=run.id, lease=LEASE)  # holds the first
    for task in (first, second):
        repeated(store, lambda task=task: store.tasks.cancel(task.id, "not needed"))  # type: ignore[misc]
        refused(
            store, InvalidTransitionError, lambda task=task: store.tasks.cancel(task.id, "other")
        )
    held_task, pending = store.tasks.get(first.id), store.tasks.get(second.id)
    assert (held_task.status, held_task.cancel_reason) == (TaskStatus.IN_PROGRESS, "not needed")
    assert pending.status is TaskStatus.ABANDONED


def test_a_worker_re_finds_the_tasks_it_holds(store: AgentStore, run: RunRecord) -> None:
    other_run = store.runs.create("another", "/repo")
    store.tasks.replace_pending(run.id, drafts(3))
    store.tasks.replace_pending(other_run.id, drafts(1))
    mine = store.tasks.claim_next("w1", run_id=run.id, lease=LEASE, limit=2)
    [elsewhere] = store.tasks.claim_next("w1", run_id=other_run.id, lease=LEASE)
    store.tasks.claim_next("w2", run_id=run.id, lease=LEASE)
    assert store.tasks.held_by("w1", run_id=run.id) == mine
    assert {t.id for t in store.tasks.held_by("w1")} == {t.id for t in [*mine, elsewhere]}
    store.tasks.complete(mine[0].id, "done", attempt=1)
    assert store.tasks.held_by("w1", run_id=run.id) == [store.tasks.get(mine[1].id)]
    assert store.tasks.held_by("nobody") == []
