"""Fixtures for the foundation tests: a configured engine on a fresh migrated database of
each dialect, and a helper to insert a run through the library's error translation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import agentstore
from agentstore.backends import backend_for
from agentstore.boundary import translated
from agentstore.models import Run


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = agentstore.create_engine(db_url)
    yield engine
    engine.dispose()


def insert_run(engine: Engine, **values: object) -> uuid.UUID:
    row = {"goal": "g", "repo_path": "/r", "status": "planning", **values}
    with translated(backend_for(engine.url)), engine.begin() as connection:
        return connection.execute(sa.insert(Run).values(row).returning(Run.id)).scalar_one()
