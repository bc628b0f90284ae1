"""Query strings read into the library's own types. Only the form is checked here (a
number, a time, a yes or no); the values go to the library, which refuses what it
refuses (``ValidationError``, a 400) with its own message. Text is passed on as text:
a hostile string is only a string."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from agentstore.errors import ValidationError
from agentstore.executions import ExecutionQuery
from agentstore.executions.query import DEFAULT_PAGE

SORTS = {"created": "created_at", "duration": "duration_ms"}
YES, NO = ("true", "1", "yes"), ("false", "0", "no")


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def one(request: Request, name: str) -> str | None:
    """The parameter ``name``, given at most once (None: not given)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ValidationError(f"{name} is given {len(values)} times: give it once")
    return values[0] if values else None


def required(request: Request, name: str) -> str:
    value = one(request, name)
    if value is None:
        raise ValidationError(f"{name} is required")
    return value


def integer(request: Request, name: str, default: int) -> int:
    text = one(request, name)
    if text is None:
        return default
    if not re.fullmatch(r"[+-]?\d{1,19}", text.strip()):
        raise ValidationError(f"{name} must be an integer, got {_shown(text)}")
    return int(text)


def flag(request: Request, name: str) -> bool | None:
    text = one(request, name)
    if text is None or text == "":
        return None
    if text.lower() in YES:
        return True
    if text.lower() in NO:
        return False
    raise ValidationError(f"{name} must be true or false, got {_shown(text)}")


def moment(request: Request, name: str) -> datetime | None:
    """An ISO 8601 time; without a zone it is taken as UTC (as the command does)."""
    text = one(request, name)
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name} must be an ISO 8601 time, got {_shown(text)}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def execution_query(request: Request) -> ExecutionQuery:
    """``?status=…&trigger=…&tool=…`` (each repeatable), ``from``, ``to``, ``code``,
    ``had_interaction``, ``sort=created_at|duration[:asc|:desc]``, ``limit``, ``cursor``."""
    field, _, direction = (one(request, "sort") or "created_at").partition(":")
    paging: dict[str, Any] = {
        "sort": SORTS.get(field, field),
        "direction": direction or "desc",
        "limit": integer(request, "limit", DEFAULT_PAGE),
        "cursor": one(request, "cursor") or None,
    }
    params = request.query_params
    return ExecutionQuery(
        statuses=params.getlist("status"),
        triggers=params.getlist("trigger"),
        tools=params.getlist("tool"),
        created_from=moment(request, "from"),
        created_to=moment(request, "to"),
        code_contains=one(request, "code") or None,
        had_interaction=flag(request, "had_interaction"),
        **paging,
    )
