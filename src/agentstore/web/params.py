"""Query strings read into the library's own types. Only the form is checked here (a
number, a time, a yes or no); the values go to the library, which refuses what it
refuses (``ValidationError``, a 400) with its own message. Text is passed on as text:
a hostile string is only a string."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

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
    return default if text is None else _integer(text, name)


def _integer(text: str, name: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,19}", text.strip()):
        raise ValidationError(f"{name} must be an integer, got {_shown(text)}")
    return int(text)


def _flag(text: str | None, name: str) -> bool | None:
    if text is None:
        return None
    if text.lower() in YES:
        return True
    if text.lower() in NO:
        return False
    raise ValidationError(f"{name} must be true or false, got {_shown(text)}")


def _moment(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (a form's ``datetime-local`` value too); without a zone it is
    taken as UTC (as the command does)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name} must be an ISO 8601 time, got {_shown(text)}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def execution_query(pairs: Sequence[tuple[str, str]]) -> ExecutionQuery:
    """The listing a query string asks for, from its ``(name, value)`` pairs (the API's
    and the dashboard's alike): ``status``, ``trigger``, ``tool`` (each repeatable),
    ``from``, ``to``, ``code``, ``had_interaction``, ``sort=created_at|duration[:asc|
    :desc]``, ``limit``, ``cursor``. An empty value is no filter (an HTML form sends
    its empty fields); any other name given twice is refused."""
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        if value.strip() != "":
            given.setdefault(name, []).append(value)

    def single(name: str) -> str | None:
        values = given.get(name, [])
        if len(values) > 1:
            raise ValidationError(f"{name} is given {len(values)} times: give it once")
        return values[0] if values else None

    field, _, direction = (single("sort") or "created_at").partition(":")
    limit = single("limit")
    return ExecutionQuery(
        statuses=given.get("status", []),
        triggers=given.get("trigger", []),
        tools=given.get("tool", []),
        created_from=_moment(single("from"), "from"),
        created_to=_moment(single("to"), "to"),
        code_contains=single("code"),
        had_interaction=_flag(single("had_interaction"), "had_interaction"),
        sort=SORTS.get(field, field),  # type: ignore[arg-type]  # the library checks it
        direction=direction or "desc",  # type: ignore[arg-type]
        limit=DEFAULT_PAGE if limit is None else _integer(limit, "limit"),
        cursor=single("cursor"),
    )
