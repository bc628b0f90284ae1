"""The two revision trees stay honest: each upgrades and downgrades cleanly, matches the
models, and the two trees describe the same schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

# pytest-alembic's built-in checks, run on both dialects through the fixtures below.
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

import agentstore
from agentstore.backends import PostgresBackend, SQLiteBackend
from agentstore.models import Base
from agentstore.schema import MIGRATIONS_DIR, VERSION_TABLE

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]

REPO = Path(__file__).resolve().parents[2]
TREES = {"sqlite": SQLiteBackend.migrations_tree, "postgresql": PostgresBackend.migrations_tree}


@pytest.fixture
def alembic_config(empty_db_url: str) -> Config:
    return agentstore.schema.alembic_config(empty_db_url)


@pytest.fixture
def alembic_engine(empty_db_url: str) -> Any:
    engine = agentstore.create_engine(empty_db_url)
    yield engine
    engine.dispose()


def alembic_cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the ``alembic`` command as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def revision_chain(tree: str) -> list[tuple[str, str | None, str]]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / tree))
    config.set_main_option("path_separator", "os")
    script = ScriptDirectory.from_config(config)
    chain = [
        (rev.revision, rev.down_revision, Path(rev.path).name)  # type: ignore[arg-type]
        for rev in script.walk_revisions("base", "heads")
    ]
    return list(reversed(chain))


def test_both_trees_have_the_same_revisions_in_the_same_order() -> None:
    local, cloud = revision_chain("local"), revision_chain("cloud")
    assert local == cloud
    assert len(local) >= 2


def test_loading_both_trees_at_once_fails() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "version_locations", f"{MIGRATIONS_DIR / 'local'}{os.pathsep}{MIGRATIONS_DIR / 'cloud'}"
    )
    config.set_main_option("path_separator", "os")
    # Both trees use the same revision ids, so mixing them is a loud error, not a merge.
    with (
        pytest.warns(UserWarning, match="present more than once"),
        pytest.raises(CommandError),
    ):
        list(ScriptDirectory.from_config(config).walk_revisions())


def test_alembic_check_finds_no_drift(db_url: str) -> None:
    command.check(agentstore.schema.alembic_config(db_url))


def test_cli_upgrade_downgrade_upgrade_and_check(empty_db_url: str) -> None:
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
        result = alembic_cli(empty_db_url, *args)
        assert result.returncode == 0, result.stderr
    current = alembic_cli(empty_db_url, "current")
    assert "(head)" in current.stdout


def test_cli_history_shows_only_the_tree_of_the_url(empty_db_url: str, dialect: str) -> None:
    result = alembic_cli(empty_db_url, "history")
    assert result.returncode == 0, result.stderr
    for revision, _, _ in revision_chain(TREES[dialect]):
        assert revision in result.stdout


def test_cli_takes_the_url_from_the_environment(empty_db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "AGENTSTORE_DATABASE_URL": empty_db_url},
    )
    assert result.returncode == 0, result.stderr
    assert head_of(empty_db_url) == [revision_chain("local")[-1][0]]


def head_of(url: str) -> list[str]:
    engine = agentstore.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            )
    finally:
        engine.dispose()


def test_a_host_applications_alembic_version_is_never_touched(empty_db_url: str) -> None:
    engine = agentstore.create_engine(empty_db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('hostapp123')")
    agentstore.migrate(empty_db_url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    engine.dispose()
    assert rows == [("hostapp123",)]
    assert head_of(empty_db_url) == [revision_chain("local")[-1][0]]


@pytest.mark.slow
def test_four_processes_upgrading_at_once_apply_head_once(empty_db_url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "alembic", "-x", f"url={empty_db_url}", "upgrade", "head"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    applied = sum(err.count("Running upgrade  -> 0001") for _, err in outcomes)
    assert applied == 1, outcomes
    assert head_of(empty_db_url) == [revision_chain("local")[-1][0]]


def schema_of(url: str, schema: str | None = None) -> dict[str, Any]:
    """Tables, columns with nullability, and every index and constraint name (of
    ``schema``, else the default one)."""
    engine = agentstore.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        found: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names(schema=schema)):
            if table == VERSION_TABLE:
                continue
            pk = inspector.get_pk_constraint(table, schema=schema)
            uniques = sorted(
                u["name"] or "" for u in inspector.get_unique_constraints(table, schema=schema)
            )
            columns = inspector.get_columns(table, schema=schema)
            found[table] = {
                "columns": sorted((c["name"], c["nullable"]) for c in columns),
                # SQLite cannot name the key of an INTEGER PRIMARY KEY AUTOINCREMENT column
                # (events.id); every other primary key is compared by name too.
                "pk": (pk["constrained_columns"], pk["name"] or f"pk_{table}"),
                "fks": sorted(
                    fk["name"] or "" for fk in inspector.get_foreign_keys(table, schema=schema)
                ),
                "uniques": uniques,
                "checks": sorted(
                    c["name"] or "" for c in inspector.get_check_constraints(table, schema=schema)
                ),
                # PostgreSQL also lists the index behind each unique constraint.
                "indexes": sorted(
                    i["name"] or ""
                    for i in inspector.get_indexes(table, schema=schema)
                    if i["name"] not in uniques
                ),
            }
        return found
    finally:
        engine.dispose()


def test_the_two_trees_build_the_same_schema(
    sqlite_databases: Any, postgresql_databases: Any
) -> None:
    sqlite_schema = schema_of(sqlite_databases.migrated())
    postgres_schema = schema_of(postgresql_databases.migrated())
    assert sqlite_schema == postgres_schema


def test_the_migrated_schema_has_every_model_table(db_url: str) -> None:
    assert set(schema_of(db_url)) == set(Base.metadata.tables)


def test_every_constraint_and_index_name_is_stable_and_short() -> None:
    names = []
    for table in Base.metadata.tables.values():
        names += [index.name for index in table.indexes]
        names += [constraint.name for constraint in table.constraints]
    assert all(isinstance(name, str) and name for name in names)
    assert max(len(str(name)) for name in names) <= 63
    assert len(names) == len(set(names))


def test_every_foreign_key_says_what_happens_on_delete() -> None:
    for table in Base.metadata.tables.values():
        for fk in table.foreign_keys:
            assert fk.ondelete in ("CASCADE", "SET NULL"), (table.name, fk.parent.name)
