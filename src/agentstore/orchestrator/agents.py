"""Agent state: one row per run and role (roles are free strings: strategy, checker, …)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.models import AgentState
from agentstore.models.base import utcnow
from agentstore.operations import Repository, reads, writes
from agentstore.records import from_row
from agentstore.validation import Id

AGENT_COLUMNS = tuple(AgentState.__table__.c)


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


class AgentRepository(Repository):
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
        query = sa.select(*AGENT_COLUMNS).where(
            AgentState.run_id == validation.identifier(run_id, "run_id")
        )
        rows = self._connection.execute(query.order_by(AgentState.role))
        return [AgentStateRecord.from_row(row) for row in rows]

    @writes
    def save(
        self,
        run_id: Id,
        role: str,
        *,
        session_id: str | None = None,
        turns: int = 0,
        rotation_count: int = 0,
        last_prompt_path: str | None = None,
        last_response_path: str | None = None,
    ) -> AgentStateRecord:
        """Insert or replace the role's state, in one statement. Raises ``NotFoundError``
        (no such run), ``ValidationError``."""
        values = {
            "run_id": validation.identifier(run_id, "run_id"),
            "role": validation.text(role, AgentState.role),
            "session_id": validation.optional_text(session_id, AgentState.session_id),
            "turns": validation.positive_int(turns, "turns", minimum=0),
            "rotation_count": validation.positive_int(rotation_count, "rotation_count", minimum=0),
            "last_prompt_path": validation.optional_text(
                last_prompt_path, AgentState.last_prompt_path
            ),
            "last_response_path": validation.optional_text(
                last_response_path, AgentState.last_response_path
            ),
            "updated_at": utcnow(),
        }
        insert = self._backend.insert(AgentState).values(values)
        upsert = insert.on_conflict_do_update(
            index_elements=["run_id", "role"],
            set_={key: insert.excluded[key] for key in values if key not in ("run_id", "role")},
        ).returning(*AGENT_COLUMNS)
        return AgentStateRecord.from_row(self._connection.execute(upsert).one())
