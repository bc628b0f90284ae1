"""Helpers for the immutable records the repositories return, and their JSON form (what
the command's ``--json`` prints and the HTTP API answers)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy.engine import Row

R = TypeVar("R")


class Unset:
    """The type of ``UNSET``: marks an argument that was not given, where ``None`` is a
    value ("clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


def from_row(record_type: type[R], row: Row[Any] | Mapping[str, Any], **overrides: Any) -> R:
    """Build ``record_type`` (a frozen dataclass) from a result row whose column names
    match its field names; ``overrides`` supply or replace fields."""
    mapping = row._mapping if isinstance(row, Row) else row
    names = _field_names(record_type)
    values = {key: value for key, value in mapping.items() if key in names}
    values.update(overrides)
    return record_type(**values)


# Records are built for every row read, and dataclasses.fields() is slow: cache it.
_FIELD_NAMES: dict[type[Any], frozenset[str]] = {}


def _field_names(record_type: type[Any]) -> frozenset[str]:
    names = _FIELD_NAMES.get(record_type)
    if names is None:
        names = frozenset(field.name for field in dataclasses.fields(record_type))
        _FIELD_NAMES[record_type] = names
    return names


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (records, UUIDs, datetimes, enums)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(plain(k)) if k is not None else None: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
