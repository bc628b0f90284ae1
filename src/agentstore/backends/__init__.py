"""Everything that differs between SQLite and PostgreSQL lives in this package, behind
one small object (a ``Backend``) chosen once from the database URL. The rest of
agentstore never asks which database it is talking to.

This module makes engines: sync ones for ``AgentStore``, asyncio ones for
``AsyncAgentStore``, both configured by the same hooks.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from agentstore.backends.base import CONFIGURED, READ_ONLY, Backend, isolation_level
from agentstore.backends.postgresql import PostgresBackend
from agentstore.backends.sqlite import SQLiteBackend
from agentstore.errors import UnsupportedDatabaseError, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

AnyEngine = TypeVar("AnyEngine", "Engine", "AsyncEngine")

DEFAULT_URL = "sqlite:///agentstore.db"
URL_ENV_VAR = "AGENTSTORE_DATABASE_URL"
SCHEMA_ENV_VAR = "AGENTSTORE_SCHEMA"
#: A schema's name: a plain lower-case identifier, short enough that the worker's
#: statements naming it stay under the length psycopg keeps parsed (``task_steps``).
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")

_BACKENDS: dict[str, Backend] = {"sqlite": SQLiteBackend(), "postgresql": PostgresBackend()}

__all__ = [
    "CONFIGURED",
    "DEFAULT_URL",
    "READ_ONLY",
    "SCHEMA_ENV_VAR",
    "URL_ENV_VAR",
    "Backend",
    "PostgresBackend",
    "SQLiteBackend",
    "backend_for",
    "check_schema",
    "configure",
    "create_async_engine",
    "create_engine",
    "in_schema",
    "resolve_schema",
    "resolve_url",
    "schema_of",
    "threaded_twin",
]


def resolve_url(url: str | URL | None = None) -> URL:
    """The URL given, else ``$AGENTSTORE_DATABASE_URL``, else the embedded SQLite file.

    A bare ``postgresql://`` URL is given the psycopg 3 driver, the one agentstore ships with.
    """
    try:
        resolved = make_url(url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL)
    except sa.exc.ArgumentError as exc:
        raise UnsupportedDatabaseError(f"not a database URL: {url!r}") from exc
    if resolved.drivername in ("postgresql", "postgres"):
        resolved = resolved.set(drivername="postgresql+psycopg")
    return resolved


def resolve_schema(backend: Backend, schema: str | None = None) -> str | None:
    """The schema given, else ``$AGENTSTORE_SCHEMA``, else None; checked (see
    ``check_schema``)."""
    return check_schema(backend, schema if schema is not None else os.environ.get(SCHEMA_ENV_VAR))


def check_schema(backend: Backend, schema: str | None) -> str | None:
    """``schema``, the PostgreSQL schema agentstore's tables live in, or None (""
    too): the connection's default, as its ``search_path`` finds it. A database
    without schemas (SQLite) ignores one with a warning (its default, ``main``,
    silently)."""
    if schema is None or schema == "":
        return None
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ValidationError(
            f"schema must be a lower-case identifier of at most 32 characters "
            f"(letters, digits, underscores), not {schema!r}"
        )
    if not backend.schemas:
        if schema != "main":
            warnings.warn(
                f"{backend.name} has no schemas: schema {schema!r} is ignored "
                "(the database file holds the store)",
                stacklevel=3,
            )
        return None
    return schema


def schema_of(connectable: Engine | Connection) -> str | None:
    """The schema agentstore's tables live in for ``connectable`` (an engine or a
    connection of one that ``in_schema`` made), or None: where ``search_path`` finds them."""
    return _translated_schema(connectable.get_execution_options())


def _translated_schema(options: Any) -> str | None:
    schema: str | None = (options.get("schema_translate_map") or {}).get(None)
    return schema


def in_schema(engine: AnyEngine, schema: str | None) -> AnyEngine:
    """``engine`` (sync or asyncio), its statements naming ``schema`` for agentstore's
    tables (SQLAlchemy's ``schema_translate_map``): nothing then depends on the
    session's ``search_path``, which a pooler may reset. The same pool; with None,
    ``engine`` itself."""
    if schema is None or _translated_schema(engine.get_execution_options()) == schema:
        return engine
    return engine.execution_options(schema_translate_map={None: schema})


def backend_for(url: URL) -> Backend:
    """The backend for ``url``'s database; any other database or driver is refused."""
    backend = _BACKENDS.get(url.get_backend_name())
    if backend is None:
        raise UnsupportedDatabaseError(
            f"agentstore runs on SQLite and PostgreSQL, not {url.get_backend_name()!r}"
        )
    backend.check_url(url)
    return backend


def configure(engine: Engine) -> Backend:
    """Give ``engine`` (sync, or an async engine's ``sync_engine``) every setting agentstore
    relies on, if it lacks them; its backend. An engine made by the host is refused if it
    cannot be made to work (another database or driver, or autocommit)."""
    backend = backend_for(engine.url)
    if isolation_level(engine) == "AUTOCOMMIT":
        raise UnsupportedDatabaseError(
            "an AUTOCOMMIT engine cannot hold agentstore's transactions: "
            "create it without isolation_level='AUTOCOMMIT'"
        )
    backend.configure(engine)
    return backend


def create_engine(url: str | URL | None = None, **engine_options: Any) -> Engine:
    """A sync engine for ``url`` (see ``resolve_url``) with every setting agentstore
    relies on. A URL naming the asyncio driver gets the sync one."""
    resolved = resolve_url(url)
    backend = backend_for(resolved)
    try:
        engine = sa.create_engine(
            backend.sync_url(resolved), **{**backend.engine_defaults, **engine_options}
        )
    except ModuleNotFoundError as exc:
        raise UnsupportedDatabaseError(
            f"{backend.name} needs the {backend.sync_driver} driver: "
            "pip install 'agentstore[postgres]'"
        ) from exc
    configure(engine)
    return engine


def create_async_engine(url: str | URL | None = None, **engine_options: Any) -> AsyncEngine:
    """An asyncio engine (``sqlalchemy.ext.asyncio.AsyncEngine``) for ``url``, on the
    native async driver (aiosqlite, psycopg's async connection), configured by the
    same hooks as the sync engine. Needs ``pip install 'agentstore[asyncio]'``."""
    resolved = resolve_url(url)
    backend = backend_for(resolved)
    if importlib.util.find_spec("greenlet") is None:  # SQLAlchemy's asyncio bridge
        raise UnsupportedDatabaseError(
            "the asyncio face needs greenlet: pip install 'agentstore[asyncio]'"
        )
    from sqlalchemy.ext.asyncio import create_async_engine as create

    options = {**backend.engine_defaults, **engine_options}
    try:
        engine = create(backend.async_url(resolved), **options)
    except ModuleNotFoundError as exc:
        raise UnsupportedDatabaseError(
            f"the asyncio face on {backend.name} needs the {backend.async_driver} driver: "
            "pip install 'agentstore[asyncio]'"
        ) from exc
    configure(engine.sync_engine)
    return engine


def threaded_twin(engine: AsyncEngine) -> Engine | None:
    """For an asyncio engine on a database whose asyncio face runs its calls in threads
    (``Backend.async_calls_in_threads``): a sync engine on the same database file, made
    from ``engine``'s URL with agentstore's settings (the async engine's own options,
    a pool class or connect arguments, are not carried over). None for any other
    engine, and for a database only that engine's connections can see (in memory)."""
    if not backend_for(engine.url).async_calls_in_threads:
        return None
    database = engine.url.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or engine.url.query.get("mode") == "memory"
    ):
        return None
    return in_schema(create_engine(engine.url), schema_of(engine.sync_engine))
