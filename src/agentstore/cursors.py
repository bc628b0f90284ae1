"""Opaque keyset cursors: URL-safe base64 of a small JSON object, bound to the ordering
they were made for, so a cursor from another listing is refused instead of misread."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from agentstore.errors import ValidationError


def encode(ordering: str, position: list[Any]) -> str:
    """A cursor for the row at ``position`` (its sort key values) of ``ordering``."""
    payload = json.dumps({"o": ordering, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(cursor: str, ordering: str, arity: int) -> list[Any]:
    """The sort key values in ``cursor``; ``ValidationError`` if it is malformed or was
    made for another ordering."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, TypeError, AttributeError):
        raise ValidationError("malformed cursor") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), list):
        raise ValidationError("malformed cursor")
    if payload.get("o") != ordering:
        raise ValidationError(
            f"cursor was made for ordering {payload.get('o')!r}, not {ordering!r}"
        )
    if len(payload["p"]) != arity:
        raise ValidationError("malformed cursor")
    return list(payload["p"])
