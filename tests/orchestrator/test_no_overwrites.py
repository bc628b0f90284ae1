"""A write changes only what it is given: ``agents.save`` keeps the fields it is not
given, ``agents.add_turns`` adds atomically, and a run's status follows its state
machine (an ended run stays ended unless reopened explicitly)."""

from __future__ import annotations

import threading
import uuid

import pytest

from agentstore import AgentStore, RunRecord, RunStatus
from agentstore.errors import InvalidTransitionError, NotFoundError, ValidationError
from tests.orchestrator.test_tasks import refused


def test_save_keeps_what_it_is_not_given(store: AgentStore, run: RunRecord) -> None:
    store.agents.save(run.id, "strategy", session_id="abc", turns=3, last_prompt_path="p1")
    saved = store.agents.save(run.id, "strategy", turns=4)
    assert (saved.session_id, saved.turns, saved.last_prompt_path) == ("abc", 4, "p1")
    cleared = store.agents.save(run.id, "strategy", session_id=None)
    assert (cleared.session_id, cleared.turns) == (None, 4)


def test_a_first_save_starts_from_the_defaults(store: AgentStore, run: RunRecord) -> None:
    first = store.agents.save(run.id, "checker", last_response_path="r")
    assert (first.session_id, first.turns, first.rotation_count) == (None, 0, 0)
    assert first.last_response_path == "r"


def test_add_turns_adds_atomically(sync_store: AgentStore, run: RunRecord) -> None:
    store = sync_store
    assert store.agents.add_turns(run.id, "builder").turns == 1  # no state yet: starts at 0

    def add() -> None:
        for _ in range(10):
            store.agents.add_turns(run.id, "builder", 2)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.agents.get(run.id, "builder").turns == 1 + 4 * 10 * 2  # type: ignore[union-attr]


def test_add_turns_refuses_what_is_not_a_count(store: AgentStore, run: RunRecord) -> None:
    refused(store, ValidationError, lambda: store.agents.add_turns(run.id, "b", 0))
    refused(store, ValidationError, lambda: store.agents.add_turns(run.id, "b", "2"))  # type: ignore[arg-type]
    refused(store, NotFoundError, lambda: store.agents.add_turns(uuid.uuid4(), "b"))


@pytest.mark.parametrize("ended", ["completed", "failed", "cancelled"])
def test_an_ended_run_stays_ended(store: AgentStore, run: RunRecord, ended: str) -> None:
    store.runs.update(run.id, status=ended)
    for status in ("planning", "running", "blocked", "paused"):
        with pytest.raises(InvalidTransitionError) as error:
            store.runs.update(run.id, status=status)
        assert error.value.status == ended
    assert store.runs.update(run.id, status=ended).status == RunStatus(ended)  # a retry
    assert store.runs.update(run.id, summary="done").summary == "done"  # not its status
    reopened = store.runs.reopen(run.id)
    assert reopened.status is RunStatus.PLANNING
    assert [e.kind for e in store.events.list(run.id)][-1] == "run_reopened"
    assert store.runs.update(run.id, status="running").status is RunStatus.RUNNING


def test_only_an_ended_run_can_be_reopened(store: AgentStore, run: RunRecord) -> None:
    refused(store, InvalidTransitionError, lambda: store.runs.reopen(run.id))
    store.runs.update(run.id, status="failed")
    refused(store, ValidationError, lambda: store.runs.reopen(run.id, status="completed"))
    assert store.runs.reopen(run.id, status="running").status is RunStatus.RUNNING
