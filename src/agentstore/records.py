"""Helpers for the immutable records the repositories return."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
