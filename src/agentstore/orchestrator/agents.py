"""Agent state: one row per run and role (roles are free strings: strategy, checker, …)."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from agentstore import validation
from agentstore.backends import Backend
from agentstore.boundary import Transactions
from agentstore.models import AgentState
from agentstore.models.base import utcnow
from agentstore.records import from_row

AGENT_COLUMNS = tuple(AgentState.__table__.c)


@dataclass(frozen=True, slots=True)
class AgentStateRecord:
    run_id: uuid.UUID
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


class AgentRepository:
    """``store.agents``."""

    def __init__(self, transactions: Transactions, backend: Backend) -> None:
        self._tx = transactions
        self._backend = backend

    def get(self, run_id: uuid.UUID, role: str) -> AgentStateRecord | None:
        """The role's state in the run, or None if it was never saved."""
        query = sa.select(*AGENT_COLUMNS).where(
            AgentState.run_id == run_id, AgentState.role == role
        )
        with self._tx.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else AgentStateRecord.from_row(row)

    def list(self, run_id: uuid.UUID) -> builtins.list[AgentStateRecord]:
        """Every role's state in the run, by role."""
        query = sa.select(*AGENT_COLUMNS).where(AgentState.run_id == run_id)
        with self._tx.read() as connection:
            rows = connection.execute(query.order_by(AgentState.role))
            return [AgentStateRecord.from_row(row) for row in rows]

    def save(
        self,
        run_id: uuid.UUID,
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
            "run_id": run_id,
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
        with self._tx.write() as connection:
            return AgentStateRecord.from_row(connection.execute(upsert).one())
