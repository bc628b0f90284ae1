"""The rest of a run's journal: artifacts it produced, approvals it received, and the
checkpoints it saved."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.models import Approval, Artifact, Checkpoint, core_table
from agentstore.operations import Repository, reads, writes
from agentstore.orchestrator.common import latest_of_run, latest_oldest_first
from agentstore.records import from_row
from agentstore.statuses import ApprovalVerdict, RunStatus
from agentstore.validation import Id

ARTIFACTS = core_table(Artifact)
APPROVALS = core_table(Approval)
CHECKPOINTS = core_table(Checkpoint)
_LATEST_ARTIFACTS = latest_of_run(ARTIFACTS, ARTIFACTS.c.created_at, ARTIFACTS.c.id)
_LATEST_APPROVALS = latest_of_run(APPROVALS, APPROVALS.c.created_at, APPROVALS.c.id)
_LATEST_CHECKPOINTS = latest_of_run(CHECKPOINTS, CHECKPOINTS.c.created_at, CHECKPOINTS.c.id)


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    id: UUID
    run_id: UUID
    role: str | None
    kind: str
    path: str
    metadata: Any
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ArtifactRecord:
        return from_row(cls, row._mapping)


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    id: UUID
    run_id: UUID
    source: str
    verdict: ApprovalVerdict
    rationale: str
    payload: Any
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ApprovalRecord:
        return from_row(cls, row._mapping, verdict=ApprovalVerdict(row.verdict))


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    id: UUID
    run_id: UUID
    status: RunStatus
    payload: Any
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> CheckpointRecord:
        return from_row(cls, row._mapping, status=RunStatus(row.status))


def _json(value: Any, name: str) -> Any:
    return validation.json_value({} if value is None else value, name)


class ArtifactRepository(Repository, aggregate="artifacts"):
    """``store.artifacts``."""

    columns = tuple(Artifact.__table__.c)

    __slots__ = ()

    @writes
    def add(
        self,
        run_id: Id,
        kind: str,
        path: str,
        *,
        role: str | None = None,
        metadata: Any = None,
    ) -> ArtifactRecord:
        """Record a file the run produced. Raises ``NotFoundError``, ``ValidationError``."""
        values = {
            "run_id": validation.identifier(run_id, "run_id"),
            "role": validation.optional_text(role, Artifact.role),
            "kind": validation.text(kind, Artifact.kind),
            "path": validation.text(path, Artifact.path),
            "metadata": _json(metadata, "metadata"),
        }
        statement = sa.insert(Artifact).values(values).returning(*self.columns)
        return ArtifactRecord.from_row(self._connection.execute(statement).one())

    @reads
    def list(
        self, run_id: Id, role: str | None = None, limit: int = 100
    ) -> builtins.list[ArtifactRecord]:
        """The run's ``limit`` latest artifacts (optionally of one role), oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        run_id = validation.identifier(run_id, "run_id")
        statement = _LATEST_ARTIFACTS
        if role is not None:
            statement = statement.where(ARTIFACTS.c.role == validation.text(role, Artifact.role))
        return latest_oldest_first(self._connection, statement, run_id, limit, ArtifactRecord)


class ApprovalRepository(Repository, aggregate="approvals"):
    """``store.approvals``."""

    columns = tuple(Approval.__table__.c)

    __slots__ = ()

    @writes
    def add(
        self, run_id: Id, source: str, verdict: str, rationale: str, payload: Any = None
    ) -> ApprovalRecord:
        """Record a reviewer's verdict. Raises ``NotFoundError``, ``ValidationError``."""
        values = {
            "run_id": validation.identifier(run_id, "run_id"),
            "source": validation.text(source, Approval.source),
            "verdict": validation.status(verdict, ApprovalVerdict, "verdict").value,
            "rationale": validation.text(rationale, Approval.rationale, required=False),
            "payload": _json(payload, "payload"),
        }
        statement = sa.insert(Approval).values(values).returning(*self.columns)
        return ApprovalRecord.from_row(self._connection.execute(statement).one())

    @reads
    def list(self, run_id: Id, limit: int = 100) -> builtins.list[ApprovalRecord]:
        """The run's ``limit`` latest approvals, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        run_id = validation.identifier(run_id, "run_id")
        return latest_oldest_first(
            self._connection,
            _LATEST_APPROVALS,
            run_id,
            limit,
            ApprovalRecord,
            verdict=ApprovalVerdict,
        )

    @reads
    def latest(self, run_id: Id, source: str) -> ApprovalRecord | None:
        """The newest approval of the run from ``source``, or None."""
        query = (
            sa.select(*self.columns)
            .where(
                Approval.run_id == validation.identifier(run_id, "run_id"),
                Approval.source == validation.text(source, Approval.source),
            )
            .order_by(Approval.created_at.desc(), Approval.id.desc())
            .limit(1)
        )
        row = self._connection.execute(query).first()
        return None if row is None else ApprovalRecord.from_row(row)


class CheckpointRepository(Repository, aggregate="checkpoints"):
    """``store.checkpoints``."""

    columns = tuple(Checkpoint.__table__.c)

    __slots__ = ()

    @writes
    def add(self, run_id: Id, status: str, payload: Any = None) -> CheckpointRecord:
        """Save a checkpoint of the run in ``status`` (a run status). Raises
        ``NotFoundError``, ``ValidationError``."""
        values = {
            "run_id": validation.identifier(run_id, "run_id"),
            "status": validation.status(status, RunStatus).value,
            "payload": _json(payload, "payload"),
        }
        statement = sa.insert(Checkpoint).values(values).returning(*self.columns)
        return CheckpointRecord.from_row(self._connection.execute(statement).one())

    @reads
    def latest(self, run_id: Id) -> CheckpointRecord | None:
        """The run's newest checkpoint, or None."""
        latest = self.list(run_id, 1)
        return latest[0] if latest else None

    @reads
    def list(self, run_id: Id, limit: int = 100) -> builtins.list[CheckpointRecord]:
        """The run's ``limit`` latest checkpoints, oldest first."""
        validation.positive_int(limit, "limit", maximum=10_000)
        run_id = validation.identifier(run_id, "run_id")
        return latest_oldest_first(
            self._connection, _LATEST_CHECKPOINTS, run_id, limit, CheckpointRecord, status=RunStatus
        )
