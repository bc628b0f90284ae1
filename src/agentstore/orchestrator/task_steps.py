"""A worker's steps as single statements, where the database runs INSERT and UPDATE
inside WITH (PostgreSQL: ``Backend.data_modifying_ctes``). Elsewhere the same steps are
several statements in one transaction (``tasks.TaskRepository``).

A step writes several tables: a claim first rescues expired leases (recording each lost
attempt and journalling it); ending a claim records the attempt and journals it;
"complete this, claim the next" does both, and a batch of completions (``task_batches``)
ends many claims at once. Being one statement, each is atomic without a transaction
around it, so a face runs it in autocommit: one round trip to the server (a batch of
completions runs in a transaction: a refused completion undoes the whole batch).

Every part of one statement sees the same snapshot of the tables, so a task the rescue
frees cannot be claimed by the same statement (the caller claims again when the rescue
freed some and it got fewer tasks than it asked for), and the rescue passes over the
task the statement ends (a statement may not update one row twice). In a step that ends
a claim, nothing else is written unless the claim was still current: the caller then
finds out why without having changed anything.

The statements are PostgreSQL's SQL written out, not built from the models: the hottest
statements of the library, they stay under 4 KB, the longest statement psycopg keeps
parsed between calls (the same statement rendered by SQLAlchemy is 7 KB, and psycopg
spent a quarter of a step's client time parsing it again each time). Their columns are
the models' (the result is typed by them, and the tests run every step).

The rows a step returns are tasks, each with its ``part``: ``closed`` (a task it
ended), ``rescued`` or ``claimed``. In a store with a schema of its own, every table
named after FROM, UPDATE or INTO is named in that schema.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa

from agentstore.backends import Backend
from agentstore.orchestrator.task_statements import (
    ATTEMPTS,
    LEASE_EXPIRED,
    LEASE_LOST,
    RESCUE_JOURNAL,
    TASK_COLUMNS,
)

CLOSED, RESCUED, CLAIMED = "closed", "rescued", "claimed"
#: A step: task rows, each tagged with its part.
Step = sa.TextualSelect

_COLUMNS = ", ".join(column.name for column in TASK_COLUMNS)
# PostgreSQL's casts (``::``) where CAST would do: the steps must stay under 4 KB (see
# ``_step``) in a schema of the longest name.
_XID = "pg_current_xact_id()::text::bigint"  # see Backend.transaction_id
_ATTEMPT = (
    "INSERT INTO task_attempts (id, run_id, task_id, attempt, status, summary, "
    "blocker_signature, result, created_at)"
)
_EVENT = "INSERT INTO events (run_id, ts, source, kind, message, payload, transaction_id)"
_PAYLOAD = "jsonb_build_object('task_id', id::text, 'attempt', attempt)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _by_rescued_status(part: int) -> str:
    """The rescue's journal entry (``RESCUE_JOURNAL``: 0 the kind, 1 the message)."""
    cases = " ".join(
        f"WHEN {_literal(status)} THEN {_literal(entry[part])}"
        for status, entry in RESCUE_JOURNAL.items()
    )
    return f"CASE status {cases} END"


# Expired leases (``:rescue_limit`` at most): pending again, or blocked once their
# attempts are used (those that asked a person, ``waits``, not counted), or abandoned if
# cancelled; each lost attempt recorded and journalled.
_RESCUE = f"""rescuable AS MATERIALIZED (
    SELECT id FROM tasks WHERE status = 'in_progress' AND lease_expires_at < now()
    {{only_if}} LIMIT :rescue_limit FOR UPDATE SKIP LOCKED),
rescued AS (
    UPDATE tasks SET
        status = CASE WHEN cancel_reason IS NOT NULL THEN 'abandoned'
            WHEN attempt - waits >= max_attempts THEN 'blocked' ELSE 'pending' END,
        blocker_signature = CASE WHEN cancel_reason IS NULL
            AND attempt - waits >= max_attempts THEN 'lease_expired' ELSE blocker_signature END,
        available_at = now(), claimed_by = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM rescuable) RETURNING tasks.*),
rescued_attempts AS ({_ATTEMPT}
    SELECT gen_random_uuid(), run_id, id, attempt, 'failed',
        {_literal(LEASE_LOST)}, {_literal(LEASE_EXPIRED)}, '{{{{}}}}', now()
    FROM rescued ON CONFLICT DO NOTHING),
rescued_events AS ({_EVENT}
    SELECT run_id, now(), 'system', {_by_rescued_status(0)}, {_by_rescued_status(1)},
        {_PAYLOAD}, {_XID}
    FROM rescued)"""

# Up to ``:limit`` available pending tasks of runs that are not paused, for ``:worker``
# under a lease of ``:lease``: of one run (``:in_run``) in plan order, or of any run by
# priority, then time available, then plan order.
_CLAIM = """claimable AS MATERIALIZED (
    SELECT id FROM tasks WHERE status = 'pending' AND available_at <= now()
    AND NOT EXISTS (SELECT FROM runs WHERE runs.id = tasks.run_id AND runs.status = 'paused')
    {only_if} ORDER BY {order} LIMIT :limit FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE tasks SET status = 'in_progress', attempt = attempt + 1,
        claimed_by = :worker, lease_expires_at = clock_timestamp() + :lease,
        updated_at = now()
    WHERE id IN (SELECT id FROM claimable) RETURNING tasks.*)"""
_IN_RUN = ("AND run_id = :in_run", "position")
_ANY_RUN = ("", "priority DESC, available_at, position, id")

# End the claim ``:held_attempt`` (NULL: any) on ``:task_id`` with ``:new_status``,
# ``:summary``, ``:blocker``; record the attempt (``:result``) and journal it (``:kind``,
# ``:message``).
_CLOSE = f"""closed AS (
    UPDATE tasks SET status = :new_status, implementation_summary = :summary,
        blocker_signature = :blocker, claimed_by = NULL, lease_expires_at = NULL,
        updated_at = now()
    WHERE id = :task_id AND status = 'in_progress'
        AND (CAST(:held_attempt AS integer) IS NULL OR attempt = :held_attempt)
    RETURNING tasks.*),
closed_attempt AS ({_ATTEMPT}
    SELECT gen_random_uuid(), run_id, id, attempt, status,
        coalesce(implementation_summary, ''), blocker_signature, :result, now()
    FROM closed ON CONFLICT DO NOTHING),
closed_event AS ({_EVENT}
    SELECT run_id, now(), 'system', :kind, :message, {_PAYLOAD}, {_XID}
    FROM closed)"""
# What the rest of a step that ends a claim runs under.
_WENT_THROUGH = "AND EXISTS (SELECT FROM closed)"

# Complete the tasks ``:ids``, each still held under its ``:attempts``, with its
# ``:summaries``; record each attempt with its ``:results`` (JSON texts) and journal it.
# Arrays, one element per task, so that one statement of fixed text ends a whole batch.
# ``hand`` holds their rows, taken in the order of their ids before the UPDATE (which
# would take them in its plan's order; ``hand``, read three times, is computed once):
# ``replace_pending`` takes a plan's rows by id too, and two statements that each lock
# several of the same rows in orders of their own deadlock.
_CLOSE_MANY = f"""hand AS (
    SELECT i.* FROM tasks, unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[]),
        CAST(:summaries AS text[]), CAST(:results AS jsonb[]))
        AS i (id, attempt, summary, result)
    WHERE tasks.id = i.id ORDER BY 1 FOR UPDATE OF tasks),
closed AS (
    UPDATE tasks SET status = 'completed', implementation_summary = hand.summary,
        blocker_signature = NULL, claimed_by = NULL, lease_expires_at = NULL,
        updated_at = now()
    FROM hand WHERE tasks.id = hand.id AND tasks.attempt = hand.attempt
        AND status = 'in_progress'
    RETURNING tasks.*),
closed_attempt AS ({_ATTEMPT}
    SELECT gen_random_uuid(), run_id, id, closed.attempt, 'completed',
        implementation_summary, NULL, hand.result, now()
    FROM closed JOIN hand USING (id) ON CONFLICT DO NOTHING),
closed_event AS ({_EVENT}
    SELECT run_id, now(), 'system', 'task_completed', 'Task completed.', {_PAYLOAD}, {_XID}
    FROM closed)"""


_SPACES = re.compile(r"\s+")
_ONE_RESULT = re.compile(r":result\b")
_TABLE = re.compile(r"\b(FROM|UPDATE|INTO) (tasks|task_attempts|events|runs)\b")


def _step(ctes: list[str], parts: tuple[str, ...], schema: str | None) -> Step:
    # Each part is ``tasks.*`` (RETURNING), so the parts line up; columns named once.
    rows = " UNION ALL ".join(f"SELECT '{part}' AS part, * FROM {part}" for part in parts)
    sql = f"WITH {', '.join(ctes)}\nSELECT part, {_COLUMNS} FROM ({rows}) AS parts"
    sql = _SPACES.sub(" ", sql)  # the layout above is for readers: the 4 KB are the server's
    if schema is not None:  # a plain identifier (see backends.check_schema)
        sql = _TABLE.sub(lambda found: f'{found[1]} "{schema}".{found[2]}', sql)
    text = sa.text(sql)
    if _ONE_RESULT.search(sql):  # an attempt's result goes in as JSON
        text = text.bindparams(sa.bindparam("result", type_=ATTEMPTS.c.result.type))
    return text.columns(sa.column("part", sa.String), *TASK_COLUMNS)


def _claim(run: tuple[str, str], only_if: str = "") -> str:
    in_run, order = run
    return _CLAIM.format(only_if=f"{in_run} {only_if}".strip(), order=order)


def _claim_step(run: tuple[str, str], schema: str | None) -> Step:
    return _step([_RESCUE.format(only_if=""), _claim(run)], (RESCUED, CLAIMED), schema)


def _close_and_claim_step(run: tuple[str, str], schema: str | None) -> Step:
    # The rescue passes over the task being ended: one statement updates a row once.
    rescue = _RESCUE.format(only_if=f"AND id <> :task_id {_WENT_THROUGH}")
    ctes = [_CLOSE, rescue, _claim(run, _WENT_THROUGH)]
    return _step(ctes, (CLOSED, RESCUED, CLAIMED), schema)


def _close_many_and_claim_step(run: tuple[str, str], schema: str | None) -> Step:
    # The rescue passes over the tasks being completed (a statement updates a row
    # once); the claim happens whether or not any of them was still held. Both read the
    # whole ``hand`` before they lock a row (the claim counts it, in a filter of its
    # own), so the hand is locked first, in the order of its ids. Run after the claim
    # (when the UPDATE found no task in progress to join it to), ``hand`` waited for
    # rows of another worker's hand while holding rows that worker's statement wanted.
    rescue = _RESCUE.format(only_if="AND id NOT IN (SELECT id FROM hand)")
    ctes = [_CLOSE_MANY, rescue, _claim(run, "AND (SELECT count(*) FROM hand) >= 0")]
    return _step(ctes, (CLOSED, RESCUED, CLAIMED), schema)


@dataclass(frozen=True)
class Steps:
    """Parameters: a claim's (``:worker``, ``:lease``, ``:limit``, ``:in_run``,
    ``:rescue_limit``), an ending's (``:task_id``, ``:held_attempt``, ``:new_status``,
    ``:summary``, ``:blocker``, ``:result``, ``:kind``, ``:message``), a batch of
    completions' (``:ids``, ``:attempts``, ``:summaries``, ``:results``: arrays)."""

    claim_in_run: Step
    claim_any_run: Step
    close: Step
    close_and_claim_in_run: Step
    close_and_claim_any_run: Step
    close_many: Step
    close_many_and_claim_in_run: Step
    close_many_and_claim_any_run: Step

    def claim(self, run_id: UUID | None) -> Step:
        return self.claim_any_run if run_id is None else self.claim_in_run

    def close_and_claim(self, run_id: UUID | None) -> Step:
        return self.close_and_claim_any_run if run_id is None else self.close_and_claim_in_run

    def close_many_and_claim(self, run_id: UUID | None) -> Step:
        if run_id is None:
            return self.close_many_and_claim_any_run
        return self.close_many_and_claim_in_run


@functools.cache
def steps(backend: Backend, schema: str | None) -> Steps | None:
    """The steps as single statements on the tables of ``schema`` (None: where the
    search path finds them), or None where the database cannot."""
    if not backend.data_modifying_ctes:
        return None
    return Steps(
        claim_in_run=_claim_step(_IN_RUN, schema),
        claim_any_run=_claim_step(_ANY_RUN, schema),
        close=_step([_CLOSE], (CLOSED,), schema),
        close_and_claim_in_run=_close_and_claim_step(_IN_RUN, schema),
        close_and_claim_any_run=_close_and_claim_step(_ANY_RUN, schema),
        close_many=_step([_CLOSE_MANY], (CLOSED,), schema),
        close_many_and_claim_in_run=_close_many_and_claim_step(_IN_RUN, schema),
        close_many_and_claim_any_run=_close_many_and_claim_step(_ANY_RUN, schema),
    )
