"""Input checks shared by the repositories. Each raises ``ValidationError`` before
anything is written, naming the field."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Column, String

from agentstore.errors import ValidationError
from agentstore.types import SerializedJSON, dumps_json, require_aware

E = TypeVar("E", bound=StrEnum)
#: What every call takes as an id: a ``uuid.UUID`` or its canonical string form.
Id = uuid.UUID | str


def status(value: str, allowed: type[E], name: str = "status") -> E:
    """``value`` as a member of ``allowed``."""
    try:
        return allowed(value)
    except ValueError:
        choices = ", ".join(member.value for member in allowed)
        raise ValidationError(f"{name} must be one of {choices}; got {value!r}") from None


def statuses(values: Iterable[str], allowed: type[E], name: str = "status") -> list[E]:
    return [status(value, allowed, name) for value in sequence(values, name)]


def sequence(values: Any, name: str) -> list[Any]:
    """``values`` (a list, tuple or other iterable, but not a single string) as a list."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(f"{name} must be a list, got {type(values).__name__}")
    return list(values)


_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def identifier(value: Any, name: str) -> uuid.UUID:
    """An id: a ``uuid.UUID``, or its canonical string form (``str(some_uuid)``, in
    either case). Anything else is a programming error, refused the same way on both
    databases (PostgreSQL would parse many more spellings; SQLite none)."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return uuid.UUID(value)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise ValidationError(f"{name} must be a UUID or its canonical string form, got {shown}")


def identifier_text(value: Any) -> str | None:
    """``value``'s canonical text if it is an id (as ``identifier`` takes it), else None
    (never raises: for telemetry, which names ids and nothing else)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value.lower()
    return None


def optional_identifier(value: Any, name: str) -> uuid.UUID | None:
    return None if value is None else identifier(value, name)


def text(value: Any, column: Column[Any] | Any, *, required: bool = True) -> str:
    """A text field: a ``str``, non-blank when ``required``, within the column's length."""
    name, max_length = _text_column(column)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {type(value).__name__}")
    if required and (not value or value.isspace()):
        raise ValidationError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters")
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{name} is longer than {max_length} characters")
    return value


@functools.cache
def _text_column(column: Column[Any] | Any) -> tuple[str, int | None]:
    """The column's name and maximum length. Cached: reading them through an ORM
    attribute is slow, and writes check text fields on every row."""
    column_type = column.type
    length = column_type.length if isinstance(column_type, String) else None
    return column.key, length or None


def optional_text(value: Any, column: Column[Any] | Any) -> str | None:
    return None if value is None else text(value, column, required=False)


def aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, got {type(value).__name__}")
    return require_aware(value, name)


def cutoff(older_than: datetime | timedelta, name: str = "older_than") -> datetime:
    """The time before which a retention sweep deletes: ``older_than`` itself, or that
    long ago (taken once, so that the batches of one sweep agree)."""
    if isinstance(older_than, timedelta):
        return datetime.now(UTC) - older_than
    found = aware(older_than, name)
    if found is None:
        raise ValidationError(f"{name} must be a datetime or a timedelta")
    return found


# Durations are added to the clock; a century keeps the sum a representable datetime.
LONGEST = timedelta(days=36_500)


def duration(value: Any, name: str) -> timedelta:
    """A positive ``timedelta`` (of at most a century)."""
    if not isinstance(value, timedelta) or not timedelta(0) < value <= LONGEST:
        raise ValidationError(f"{name} must be a timedelta over 0, up to 100 years, not {value!r}")
    return value


def delay(value: Any, name: str) -> timedelta:
    """A ``timedelta`` of zero or more (and at most a century)."""
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= LONGEST:
        raise ValidationError(f"{name} must be a timedelta of 0 to 100 years, got {value!r}")
    return value


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False, got {value!r}")
    return value


def json_value(value: Any, name: str) -> SerializedJSON | None:
    """``value`` serialised now, so a bad payload is refused by name instead of failing
    halfway through a write (and is not serialised again when written). None stays
    None: SQL NULL."""
    if value is None:
        return None
    try:
        return SerializedJSON(dumps_json(value))
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None


INT4_MAX = 2**31 - 1  # the largest INTEGER PostgreSQL stores (SQLite takes the same)


def positive_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = INT4_MAX) -> int:
    """An integer within bounds (by default, one an INTEGER column holds on both
    databases: SQLite would take more, PostgreSQL refuse it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationError(f"{name} must be {bound}, got {value}")
    return value
