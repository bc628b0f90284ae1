"""Input checks shared by the repositories. Each raises ``ValidationError`` before
anything is written, naming the field."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Column, String

from agentstore.errors import ValidationError
from agentstore.types import dumps_json, require_aware

E = TypeVar("E", bound=StrEnum)


def status(value: str, allowed: type[E], name: str = "status") -> E:
    """``value`` as a member of ``allowed``."""
    try:
        return allowed(value)
    except ValueError:
        choices = ", ".join(member.value for member in allowed)
        raise ValidationError(f"{name} must be one of {choices}; got {value!r}") from None


def statuses(values: Iterable[str], allowed: type[E], name: str = "status") -> list[E]:
    return [status(value, allowed, name) for value in values]


def text(value: Any, column: Column[Any] | Any, *, required: bool = True) -> str:
    """A text field: a ``str``, non-blank when ``required``, within the column's length."""
    name = column.key
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ValidationError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters")
    column_type = column.type
    if isinstance(column_type, String) and column_type.length and len(value) > column_type.length:
        raise ValidationError(f"{name} is longer than {column_type.length} characters")
    return value


def optional_text(value: Any, column: Column[Any] | Any) -> str | None:
    return None if value is None else text(value, column, required=False)


def aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else require_aware(value, name)


def json_value(value: Any, name: str) -> Any:
    """Check that ``value`` serialises as JSON now, so a bad payload is refused by name
    instead of failing halfway through a write."""
    try:
        dumps_json(value)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None
    return value


def positive_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationError(f"{name} must be {bound}, got {value}")
    return value
