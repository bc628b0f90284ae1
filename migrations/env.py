"""Alembic environment shared by both revision trees.

The database URL comes from ``-x url=…``, else the caller's config (``agentstore.migrate``),
else ``$AGENTSTORE_DATABASE_URL``, else ``sqlite:///agentstore.db``; its dialect picks the
tree: ``local`` (SQLite) or ``cloud`` (PostgreSQL). An Engine or Connection handed over in
``config.attributes["connection"]`` (as pytest-alembic does) is used instead of a new one.

The PostgreSQL schema comes from ``-x schema=…``, else the caller's config, else (the
``alembic`` command) ``$AGENTSTORE_SCHEMA``; None: the session's default. The migrations
run in one transaction that creates the schema if absent and sets its own
``search_path`` to it (``SET LOCAL``: nothing of it outlives the transaction).
"""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection, Engine

from agentstore.backends import (
    backend_for,
    check_schema,
    create_engine,
    resolve_schema,
    resolve_url,
)
from agentstore.models import Base
from agentstore.schema import VERSION_TABLE, select_tree

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

given: Engine | Connection | None = config.attributes.get("connection")
if given is not None:
    url = given.engine.url
else:
    url = resolve_url(
        context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    )
backend = backend_for(url)
select_tree(context.script, backend)
x_arguments = context.get_x_argument(as_dictionary=True)
if "schema" in x_arguments:
    schema = check_schema(backend, x_arguments["schema"])
elif "schema" in config.attributes:
    schema = config.attributes["schema"]
else:
    schema = resolve_schema(backend)


def not_the_version_table(name: str | None, type_: str, _parent: Any) -> bool:
    # Autogenerate skips the version table only where it is not in a schema of its own.
    return not (type_ == "table" and name == VERSION_TABLE)


options: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "version_table": VERSION_TABLE,  # never touch a host application's alembic_version
    "version_table_schema": schema,
    "include_name": not_the_version_table,
    "render_as_batch": backend.name == "sqlite",  # SQLite alters tables by copying them
    "transactional_ddl": True,  # SQLite runs DDL in transactions too: all or nothing
    "compare_type": True,
}


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **options)
    with backend.migration_transaction(connection):
        backend.enter_schema(connection, schema)
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
elif isinstance(given, Connection):
    run_on(given)
else:
    engine = given or create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        if given is None:
            engine.dispose()
