"""Alembic environment shared by both revision trees.

The database URL comes from ``-x url=…``, else the caller's config (``agentstore.migrate``),
else ``$AGENTSTORE_DATABASE_URL``, else ``sqlite:///agentstore.db``; its dialect picks the
tree: ``local`` (SQLite) or ``cloud`` (PostgreSQL). A connection handed over in
``config.attributes["connection"]`` (as pytest-alembic does) is used as it is.
"""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from agentstore.backends import backend_for, resolve_url
from agentstore.models import Base
from agentstore.schema import VERSION_TABLE, select_tree

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

connection = config.attributes.get("connection")
url = (
    connection.engine.url
    if connection is not None
    else resolve_url(
        context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    )
)
backend = backend_for(url)
select_tree(context.script, backend)

options: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "version_table": VERSION_TABLE,  # never touch a host application's alembic_version
    "render_as_batch": backend.name == "sqlite",  # SQLite alters tables by copying them
    "transactional_ddl": True,  # SQLite runs DDL in transactions too: all or nothing
    "compare_type": True,
}


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **options)
    with backend.migration_transaction(connection):
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    run_on(connection)
else:
    engine = backend.create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as new_connection:
            run_on(new_connection)
    finally:
        engine.dispose()
