"""The transaction boundary: reads see one snapshot of the database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from agentstore.backends import backend_for
from agentstore.boundary import Transactions
from agentstore.models import Run
from tests.foundation.conftest import insert_run


def count_runs(connection: sa.Connection) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(Run)).scalar_one())


def test_a_read_sees_one_snapshot_across_its_statements(
    transactions: Transactions, engine: Engine
) -> None:
    insert_run(transactions)
    elsewhere = Transactions(engine, backend_for(engine.url))  # its own connections
    with transactions.read() as connection:
        before = count_runs(connection)
        insert_run(elsewhere)  # committed while the read is open
        assert count_runs(connection) == before
    with transactions.read() as connection:
        assert count_runs(connection) == before + 1
