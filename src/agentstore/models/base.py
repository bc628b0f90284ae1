"""The declarative base shared by every model, and the helpers every table uses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agentstore.types import JSONDocument, UTCDateTime, UUIDKey

# Stable names for every constraint and index, identical on both dialects and short
# enough for PostgreSQL's 63-character limit (a test checks every name). SQLite batch
# migrations need named constraints to alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        uuid.UUID: UUIDKey(),
        dict[str, Any]: JSONDocument(),
        list[str]: JSONDocument(),
        Any: JSONDocument(),
    }


def status_check(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A CHECK constraint that allows exactly the members of ``values``; named
    ``ck_<table>_<column>`` by the naming convention."""
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


def status_column() -> Mapped[str]:
    """A status stored as short text (its allowed values are kept by ``status_check``)."""
    return mapped_column(String(32))


def core_table(model: type[Base]) -> Table:
    """The Core table of ``model``. Hot paths build statements on it: an ORM-enabled
    statement costs extra work on every execution."""
    return Base.metadata.tables[model.__tablename__]


def utcnow() -> datetime:
    return datetime.now(UTC)


def created_at_column() -> Mapped[datetime]:
    """The creation time, set in Python so both dialects store the same UTC instant."""
    return mapped_column(default=utcnow)


def updated_at_column() -> Mapped[datetime]:
    """The last change, refreshed by every ORM and Core ``update()`` of the row."""
    return mapped_column(default=utcnow, onupdate=utcnow)
