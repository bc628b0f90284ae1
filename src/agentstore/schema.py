"""Migrations: two Alembic revision trees, ``migrations/local`` for SQLite and
``migrations/cloud`` for PostgreSQL, behind one ``env.py`` that picks the tree from the
database URL. Only one tree is ever loaded: both use the same revision ids, so loading
both at once would be a duplicate-revision error rather than a silent mix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionMap
from alembic.util import CommandError
from sqlalchemy import pool
from sqlalchemy.engine import URL

from agentstore.backends import Backend, backend_for, check_schema, create_engine, resolve_url
from agentstore.boundary import translated
from agentstore.errors import UnsupportedDatabaseError


def _migrations_dir() -> Path:
    """Inside the package in an installed wheel; the checkout's ``migrations/`` when the
    package runs from the source tree (a development install)."""
    packaged = Path(__file__).resolve().parent / "migrations"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "migrations"


MIGRATIONS_DIR = _migrations_dir()
VERSION_TABLE = "agentstore_alembic_version"


def tree_path(backend: Backend) -> Path:
    """The folder of ``backend``'s revision tree."""
    return MIGRATIONS_DIR / backend.migrations_tree


def select_tree(script: ScriptDirectory, backend: Backend) -> None:
    """Point ``script`` at the one revision tree for ``backend``.

    The ``alembic`` command builds its script directory from ``alembic.ini`` before
    ``env.py`` knows the URL; revisions are read lazily, so ``env.py`` can still choose
    the tree before any revision is read.
    """
    script.version_locations = [str(tree_path(backend))]
    script.revision_map = RevisionMap(script._load_revisions)


def alembic_config(url: str | URL | None = None, *, schema: str | None = None) -> Config:
    """An Alembic config for ``url`` (see ``resolve_url``) and ``schema`` (PostgreSQL:
    the schema of agentstore's tables and its version table; see ``AgentStore.open``)
    that needs no ``alembic.ini`` and names its tree up front."""
    resolved = resolve_url(url)
    backend = backend_for(resolved)
    config_schema = check_schema(backend, schema)
    resolved = backend.sync_url(resolved)  # Alembic runs on the sync driver
    # Alembic's default output stream is the sys.stdout of when it was imported: name
    # the current one, so that its reports go where the caller's output goes.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(tree_path(backend)))
    config.attributes["url"] = resolved
    config.attributes["schema"] = config_schema
    return config


def revisions(
    url: str | URL | None = None, *, schema: str | None = None
) -> tuple[set[str], set[str]]:
    """The database's current revisions (those of ``schema``) and the head revisions of
    its tree."""
    config = alembic_config(url, schema=schema)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    try:
        with translated(backend_for(engine.url)), engine.connect() as connection:
            opts = {
                "version_table": VERSION_TABLE,
                "version_table_schema": config.attributes["schema"],
            }
            context = MigrationContext.configure(connection, opts=opts)
            return set(context.get_current_heads()), heads
    finally:
        engine.dispose()


def migrate(
    url: str | URL | None = None, revision: str = "head", *, schema: str | None = None
) -> None:
    """Upgrade the database at ``url`` to ``revision`` on the right tree for its dialect,
    in ``schema`` (PostgreSQL; created if absent).

    Safe to call from several processes at once: one applies, the others wait and then
    find nothing left to do. Raises ``StoreUnavailableError`` (the database could not be
    reached), ``UnsupportedDatabaseError`` (the database is at a revision this release of
    agentstore does not know: a newer one migrated it).
    """
    config = alembic_config(url, schema=schema)
    with translated(backend_for(config.attributes["url"])):
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise UnsupportedDatabaseError(
                f"cannot migrate: {exc} (was the database migrated by a newer agentstore?)"
            ) from exc
