"""Helpers for the immutable records the repositories return, and their JSON form (what
the command's ``--json`` prints and the HTTP API answers)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import Enum
from operator import itemgetter
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


def from_rows(
    record_type: type[R],
    rows: Iterable[Row[Any]],
    keys: Iterable[str],
    **convert: Callable[[Any], Any],
) -> list[R]:
    """A ``record_type`` from each of ``rows`` (a result's rows, whose column names are
    ``keys``), as ``from_row`` builds it, every field from the column of its name, through
    ``convert[field]`` where given (``status=RunStatus``). The columns are matched to
    the fields once for all the rows, and each record is built from its values in order:
    ``from_row``'s matching by name on every row was most of a long list's cost."""
    get = _values_getter(record_type, tuple(keys))
    if not convert:
        return [record_type(*get(row)) for row in rows]
    names = _field_order(record_type)
    converted = [(names.index(name), function) for name, function in convert.items()]
    records = []
    for row in rows:
        values = list(get(row))
        for at, function in converted:
            values[at] = function(values[at])
        records.append(record_type(*values))
    return records


_VALUES_GETTERS: dict[tuple[type[Any], tuple[str, ...]], Callable[[Any], Any]] = {}


def _values_getter(record_type: type[Any], keys: tuple[str, ...]) -> Callable[[Any], Any]:
    """For rows with these column names: the values of ``record_type``'s fields, in order."""
    getter = _VALUES_GETTERS.get((record_type, keys))
    if getter is None:
        getter = itemgetter(*[keys.index(name) for name in _field_order(record_type)])
        _VALUES_GETTERS[record_type, keys] = getter
    return getter


def _field_order(record_type: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(record_type))


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
