"""Fresh databases for tests, built from the migrations (never ``create_all``).

Migrating takes a while, so each dialect is migrated once per session into a template,
and every test gets a copy: ``CREATE DATABASE … TEMPLATE`` on PostgreSQL, a file copy on
SQLite. Empty (unmigrated) databases are available for the migration tests themselves.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

import agentstore

# Several test sessions may share one server (say, two checkouts pointed at the same
# $AGENTSTORE_TEST_POSTGRES_URL): the process id keeps their databases apart.
PREFIX = f"agentstore_{os.getpid()}"
DIALECTS = ["sqlite", "postgresql"]
#: The dialects of the suites that also run through PgBouncer in transaction mode.
WITH_POOLER = [*DIALECTS, "pgbouncer"]
TEMPLATE = f"{PREFIX}_template"


class SQLiteDatabases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count()
        self._template: Path | None = None

    def empty(self) -> str:
        return f"sqlite:///{self.root / f'test_{next(self._names)}.db'}"

    def migrated(self) -> str:
        if self._template is None:
            template = self.root / "template.db"
            agentstore.migrate(f"sqlite:///{template}")
            self._template = template
        target = self.root / f"test_{next(self._names)}.db"
        shutil.copyfile(self._template, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        """Nothing to do: the files live in pytest's temporary directory."""

    def drop_all(self) -> None:
        """Nothing to do: the files live in pytest's temporary directory."""


class PostgresDatabases:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self._names = itertools.count()
        self._created: list[str] = []
        self._template_ready = False

    def _create(self, template: str | None = None) -> str:
        name = f"{PREFIX}_test_{next(self._names)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
        self._created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def empty(self) -> str:
        return self._create()

    def migrated(self) -> str:
        if not self._template_ready:
            with self.admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
                connection.exec_driver_sql(f"CREATE DATABASE {TEMPLATE}")
            url = self.admin_url.set(database=TEMPLATE)
            agentstore.migrate(url)
            self._template_ready = True
        return self._create(TEMPLATE)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(self._created):
            with self.admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._created.clear()
        self.admin.dispose()


class PooledDatabases:
    """PostgreSQL databases reached through a pooler in transaction mode: made (and
    migrated) on the server, used through the pooler, their URLs saying so
    (``?transaction_pooling=true``)."""

    def __init__(self, server: PostgresDatabases, pooler_url: str) -> None:
        self.server = server
        self.pooler_url = make_url(pooler_url)

    def through_pooler(self, url: str) -> str:
        pooled = self.pooler_url.set(
            database=make_url(url).database, query={"transaction_pooling": "true"}
        )
        return pooled.render_as_string(hide_password=False)

    def empty(self) -> str:
        return self.through_pooler(self.server.empty())

    def migrated(self) -> str:
        return self.through_pooler(self.server.migrated())

    def drop(self, url: str) -> None:
        self.server.drop(url)  # by name, on the server

    def drop_all(self) -> None:
        """The server's databases are dropped with the server's."""
