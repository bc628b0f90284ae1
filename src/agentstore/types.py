"""Portable column types: one definition, the right storage on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import numbers
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Uuid
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from agentstore.errors import ValidationError

# The version (7) and variant (RFC 4122) bits of a UUIDv7, and the mask that clears them.
_V7_BITS = 0x7 << 76 | 0x2 << 62
_V7_CLEAR = ~(0xF << 76 | 0x3 << 62)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562, version 7): 48 bits of Unix milliseconds, then random.

    Time-ordered keys keep B-tree inserts at the right edge of the index, and sort by
    creation time when nothing better is at hand. Made for every row written, so built
    as ``uuid_from_hex`` builds one (see there).
    """
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10))
    return _uuid_of_int(value & _V7_CLEAR | _V7_BITS)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused, since its zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 00:00+05:00, which is in the year 0 in UTC
        raise ValidationError(f"{name} is out of range in UTC: {value.isoformat()}") from None


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME for an aware UTC datetime, stored as naive UTC text written by
    ``datetime.isoformat`` (in C) instead of SQLAlchemy's %-formatting: the same
    "YYYY-MM-DD HH:MM:SS.ffffff" in about half the time, which counts since every row
    written binds a timestamp or two."""

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], str | None]:
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], datetime | None]:
        """Aware UTC datetimes straight from the stored text, parsed in C: SQLAlchemy's
        parse and then ``replace(tzinfo=UTC)`` took ten times as long, which counts on
        reads of many rows (a snapshot's tasks carry three timestamps each)."""
        slow: Callable[[str], datetime] = super().result_processor(dialect, coltype)  # type: ignore[assignment]

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                parsed = datetime.fromisoformat(value + "+00:00")
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is not UTC:  # not a date and time as
                parsed = slow(value).replace(tzinfo=UTC)  # agentstore writes them
            return parsed

        return process


def _in_utc(value: datetime | None) -> datetime | None:
    """``UTCDateTime.process_result_value`` for a driver's datetime (psycopg's are aware,
    in the session's zone: usually UTC already)."""
    if value is None or value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: refuses naive datetimes, stores UTC, always returns aware UTC.

    PostgreSQL stores ``TIMESTAMPTZ``. SQLite has no time zone type, so the value is stored
    as a naive UTC text in a fixed format, which also sorts correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # SQLAlchemy's DATETIME.__init__ carries no annotations.
            return dialect.type_descriptor(_SQLiteDateTime())  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else require_aware(value)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if isinstance(self.impl_instance, _SQLiteDateTime):  # it reads aware UTC itself
            return self.impl_instance.result_processor(dialect, coltype)
        if self.impl_instance.result_processor(dialect, coltype) is None:
            return _in_utc  # the driver's own datetimes: one call each, not two
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _in_utc(value)


class JSONDocument(TypeDecorator[Any]):
    """A JSON value: JSONB on PostgreSQL, JSON text on SQLite. Python ``None`` is SQL NULL.

    Values are serialised by ``dumps_json`` whatever the engine's ``json_serializer``, so
    an engine created by the host (or an async engine) writes the same JSON as ours.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        if dialect.name == "postgresql":
            # psycopg (sync and async) takes a JSONB parameter as a Jsonb wrapper; given
            # its own dumps, it ignores the serializer set on the connection.
            from psycopg.types.json import Jsonb

            def to_jsonb(value: Any) -> Any:
                return None if value is None else Jsonb(value, dumps_json)

            return to_jsonb

        def to_text(value: Any) -> str | None:
            return None if value is None else dumps_json(value)

        return to_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "postgresql":  # psycopg parses JSONB itself
            return super().result_processor(dialect, coltype)
        return loads_json


class SerializedJSON(str):
    """JSON text ``dumps_json`` already produced. Input checks serialise each value to
    refuse a bad one by name; the engine then writes that text instead of serialising
    the value a second time."""


# Built once: ``json.dumps`` with options builds a new encoder on every call.
_JSON_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
# The C encoder ``_JSON_ENCODER.encode`` makes on every call (as ``json.dumps`` does),
# made once: 0.8 µs a small document instead of 1.8, on every JSON value written. Without
# the circular-reference check, which needs a fresh set per call: a cycle ends in
# RecursionError, as a document nested too deep does anyway.
_ENCODE_JSON = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _JSON_ENCODER.default, encode_basestring, None, ":", ",", False, False, False
    )
)


def dumps_json(value: Any) -> str:
    """The JSON serializer every engine uses: strict (no NaN, which JSONB refuses) and
    raising our ``ValidationError`` for values that are not JSON."""
    if isinstance(value, SerializedJSON):
        return str(value)
    try:
        if _ENCODE_JSON is None:
            return _JSON_ENCODER.encode(value)
        return "".join(_ENCODE_JSON(value, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"value is not JSON-serialisable: {exc}") from exc


_JSON_DECODER = json.JSONDecoder()


def loads_json(value: Any) -> Any:
    """A JSON value read from SQLite's text, as ``json.loads`` reads it. ``raw_decode``
    skips the two whitespace scans ``json.loads`` makes around every document (most of
    its time on a short one: a read of many rows decodes several per row); text that is
    not exactly one document goes the usual way. SQLite hands back a JSON number stored
    alone as a number."""
    if isinstance(value, str):
        if value == "[]":  # the stored default of every list field: no parse
            return []
        try:
            document, end = _JSON_DECODER.raw_decode(value)
        except json.JSONDecodeError:  # e.g. whitespace first: json.loads says what is wrong
            end = -1
        return document if end == len(value) else _JSON_DECODER.decode(value)
    if value is None or isinstance(value, numbers.Number):
        return value
    raise TypeError(f"a JSON column held {type(value).__name__}, not text")


_new_object = object.__new__
_set_slot = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def uuid_from_hex(value: str | None) -> uuid.UUID | None:
    """The UUID stored as 32 hex digits (SQLite's CHAR(32)). Built as ``uuid.UUID``'s own
    ``__init__`` and unpickling build one, by setting its two slots (``int``, ``is_safe``),
    without the checks and string handling of ``__init__``: a third of its time, on every
    id of every row read. Any other text goes through ``uuid.UUID``."""
    if value is None:
        return None
    if len(value) != 32:
        return uuid.UUID(value)
    return _uuid_of_int(int(value, 16))


def _uuid_of_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` for a 128-bit ``value``, without ``__init__``."""
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _UNKNOWN_SAFETY)
    return made


class UUIDKey(Uuid[uuid.UUID]):
    """SQLAlchemy's ``Uuid`` (native UUID on PostgreSQL, 32 hex digits on SQLite), read
    faster where it is text (``uuid_from_hex``)."""

    cache_ok = True

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], uuid.UUID | None] | None:
        processor: Callable[[Any], Any] | None = super().result_processor(  # type: ignore[no-untyped-call]
            dialect, coltype
        )
        if processor is None or not self.as_uuid:  # the driver's own UUIDs
            return processor
        return uuid_from_hex


# A 64-bit auto-increment key. SQLite only auto-increments a column declared exactly
# ``INTEGER PRIMARY KEY`` (which is 64-bit there), so it gets that spelling.
AutoIncrementBigInt = BigInteger().with_variant(Integer(), "sqlite")
