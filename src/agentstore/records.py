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
    fields = {field.name for field in dataclasses.fields(record_type)}  # type: ignore[arg-type]
    values = {key: mapping[key] for key in fields if key in mapping}
    values.update(overrides)
    return record_type(**values)
