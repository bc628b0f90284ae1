"""``AgentStore``: the entry point. It owns the engine and hands out the repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy.engine import URL, Engine

from agentstore.backends import backend_for, create_engine
from agentstore.boundary import Transactions
from agentstore.executions import ExecutionRepository
from agentstore.orchestrator import (
    AgentRepository,
    ApprovalRepository,
    ArtifactRepository,
    AttemptRepository,
    CheckpointRepository,
    EventRepository,
    RunRepository,
    SnapshotReader,
    TaskRepository,
)
from agentstore.schema import migrate


class AgentStore:
    """Storage for orchestrator runs and execution history.

    Every repository call is its own transaction unless it runs inside
    ``store.transaction()``. Calls return immutable records, never live ORM objects.
    One store may be shared by many threads.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = backend_for(engine.url)
        self._transactions = tx = Transactions(engine, self.backend)
        self.agents = AgentRepository(tx, self.backend)
        self.tasks = TaskRepository(tx, self.backend)
        self.attempts = AttemptRepository(tx)
        self.events = EventRepository(tx)
        self.artifacts = ArtifactRepository(tx)
        self.approvals = ApprovalRepository(tx)
        self.checkpoints = CheckpointRepository(tx)
        snapshots = SnapshotReader(
            tx,
            agents=self.agents,
            tasks=self.tasks,
            attempts=self.attempts,
            events=self.events,
            approvals=self.approvals,
            artifacts=self.artifacts,
            checkpoints=self.checkpoints,
        )
        self.runs = snapshots.runs = RunRepository(tx, snapshots)
        self.executions = ExecutionRepository(tx, self.backend)

    @classmethod
    def open(cls, url: str | URL | None = None) -> AgentStore:
        """Open the store at ``url``, else ``$AGENTSTORE_DATABASE_URL``, else
        ``sqlite:///agentstore.db``. Nothing is created until ``migrate()``."""
        return cls(create_engine(url))

    def migrate(self) -> None:
        """Upgrade the database to the newest schema, on the right tree for its dialect."""
        migrate(self.engine.url)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several calls into one transaction: all of them happen, or none.

        A call that raises inside the block is undone on its own (it runs in a
        savepoint); an exception that leaves the block rolls everything back.
        """
        with self._transactions.transaction():
            yield

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> AgentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
