"""Fixtures for the foundation tests: a raw engine and the transaction boundary on a fresh
migrated database of each dialect, and a helper to insert a run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import agentstore
from agentstore.backends import backend_for
from agentstore.boundary import Transactions
from agentstore.models import Run


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = agentstore.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def transactions(engine: Engine) -> Transactions:
    return Transactions(engine, backend_for(engine.url))


def insert_run(transactions: Transactions, **values: object) -> uuid.UUID:
    row = {"goal": "g", "repo_path": "/r", "status": "planning", **values}
    with transactions.write() as connection:
        return connection.execute(sa.insert(Run).values(row).returning(Run.id)).scalar_one()
