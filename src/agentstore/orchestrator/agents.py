"""Agent state: one row per run and role (roles are free strings: strategy, checker, …)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.models import AgentState, core_table
from agentstore.models.base import utcnow
from agentstore.operations import Repository, reads, writes
from agentstore.records import UNSET, Unset, from_row, from_rows
from agentstore.validation import Id

AGENT_COLUMNS = tuple(AgentState.__table__.c)
AGENTS = core_table(AgentState)
# Built once, with a bound parameter: a run's snapshot reads it on every call.
_OF_RUN = (
    sa.select(*AGENTS.c).where(AGENTS.c.run_id == sa.bindparam("run_id")).order_by(AGENTS.c.role)
)


@dataclass(frozen=True, slots=True)
class AgentStateRecord:
    run_id: UUID
    role: str
    session_id: str | None
    turns: int
    rotation_count: int
    last_prompt_path: str | None
    last_response_path: str | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> AgentStateRecord:
        return from_row(cls, row._mapping)


class AgentRepository(Repository, aggregate="agents"):
    """``store.agents``: each role's state in a run."""

    __slots__ = ()

    @reads
    def get(self, run_id: Id, role: str) -> AgentStateRecord | None:
        """The role's state in the run, or None if it was never saved."""
        query = sa.select(*AGENT_COLUMNS).where(
            AgentState.run_id == validation.identifier(run_id, "run_id"),
            AgentState.role == validation.text(role, AgentState.role),
        )
        row = self._connection.execute(query).first()
        return None if row is None else AgentStateRecord.from_row(row)

    @reads
    def list(self, run_id: Id) -> builtins.list[AgentStateRecord]:
        """Every role's state in the run, by role."""
        run_id = validation.identifier(run_id, "run_id")
        result = self._connection.execute(_OF_RUN, {"run_id": run_id})
        return from_rows(AgentStateRecord, result.all(), result.keys())

    @writes
    def save(
        self,
        run_id: Id,
        role: str,
        *,
        session_id: str | Unset | None = UNSET,
        turns: int | Unset = UNSET,
        rotation_count: int | Unset = UNSET,
        last_prompt_path: str | Unset | None = UNSET,
        last_response_path: str | Unset | None = UNSET,
    ) -> AgentStateRecord:
        """Set the fields given of the role's state (``None`` clears a text field), in
        one statement; the others keep their values (the first save starts from no
        session, 0 turns and rotations, no paths). Raises ``NotFoundError`` (no such
        run), ``ValidationError``."""
        given = {
            name: check(value)
            for name, value, check in (
                ("session_id", session_id, _text(AgentState.session_id)),
                ("turns", turns, _count("turns")),
                ("rotation_count", rotation_count, _count("rotation_count")),
                ("last_prompt_path", last_prompt_path, _text(AgentState.last_prompt_path)),
                ("last_response_path", last_response_path, _text(AgentState.last_response_path)),
            )
            if not isinstance(value, Unset)
        }
        return self._upsert(run_id, role, given, given)

    @writes
    def add_turns(self, run_id: Id, role: str, turns: int = 1) -> AgentStateRecord:
        """Add ``turns`` to the role's turn count, atomically (concurrent adds all
        count); a role never saved starts from 0. Raises ``NotFoundError`` (no such
        run), ``ValidationError``."""
        added = validation.positive_int(turns, "turns")
        return self._upsert(
            run_id, role, {"turns": added}, {"turns": AgentState.__table__.c.turns + added}
        )

    def _upsert(
        self, run_id: Id, role: str, inserted: dict[str, Any], updated: dict[str, Any]
    ) -> AgentStateRecord:
        """Insert the role's state with ``inserted`` (defaults for the rest), or update
        the existing row with ``updated``: one statement either way."""
        now = utcnow()
        values = {
            "run_id": validation.identifier(run_id, "run_id"),
            "role": validation.text(role, AgentState.role),
            **inserted,
            "updated_at": now,
        }
        insert = self._backend.insert(AgentState).values(values)
        upsert = insert.on_conflict_do_update(
            index_elements=["run_id", "role"], set_={**updated, "updated_at": now}
        ).returning(*AGENT_COLUMNS)
        return AgentStateRecord.from_row(self._connection.execute(upsert).one())


def _text(column: Any) -> Callable[[Any], str | None]:
    return lambda value: validation.optional_text(value, column)


def _count(name: str) -> Callable[[Any], int]:
    return lambda value: validation.positive_int(value, name, minimum=0)
