"""The listing query: filters, sorts and keyset cursors, all in SQL.

Sorting by duration puts executions that have none yet last in both directions: the
sort key is ``(duration_ms IS NULL, duration_ms, id)``, with only the last two reversed
for a descending sort, and the cursor carries all three.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from agentstore import cursors, validation
from agentstore.backends import Backend
from agentstore.errors import ValidationError
from agentstore.models import Execution, ExecutionInteraction, ExecutionToolCall
from agentstore.statuses import ExecutionStatus

UNKNOWN_TRIGGER = "unknown"  # the trigger filter's name for "no trigger recorded"
DEFAULT_PAGE, MAX_PAGE = 25, 100
LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    """What to list. Every filter is optional; filters combine with AND, the values
    inside one filter with OR."""

    statuses: Sequence[str] = ()
    triggers: Sequence[str] = ()  # ``"unknown"`` matches executions with no trigger
    tools: Sequence[str] = ()  # an exact tool path, or ``prefix.*`` for it and below it
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # inclusive
    after: datetime | None = None  # created strictly after
    code_contains: str | None = None  # case-insensitive substring
    had_interaction: bool | None = None
    sort: Literal["created_at", "duration_ms"] = "created_at"
    direction: Literal["asc", "desc"] = "desc"
    limit: int = DEFAULT_PAGE
    cursor: str | None = None


def like_literal(text: str) -> str:
    """``text`` with LIKE's wildcards escaped, so it matches only itself."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", f"{LIKE_ESCAPE}%")
        .replace("_", f"{LIKE_ESCAPE}_")
    )


def _tool_matches(pattern: str) -> sa.ColumnElement[bool]:
    path = ExecutionToolCall.tool_path
    if pattern.endswith(".*"):
        prefix = pattern[:-2]
        return sa.or_(path == prefix, path.like(like_literal(prefix) + ".%", escape=LIKE_ESCAPE))
    return path == pattern


def filters(backend: Backend, scope_id: str, query: ExecutionQuery) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``query`` within ``scope_id`` (validating as it goes)."""
    clauses: list[sa.ColumnElement[bool]] = [Execution.scope_id == scope_id]
    if query.statuses:
        wanted = validation.statuses(query.statuses, ExecutionStatus)
        clauses.append(Execution.status.in_([status.value for status in wanted]))
    if query.triggers:
        kinds = [kind for kind in query.triggers if kind != UNKNOWN_TRIGGER]
        either = [Execution.trigger_kind.in_(kinds)] if kinds else []
        if UNKNOWN_TRIGGER in query.triggers:
            either.append(Execution.trigger_kind.is_(None))
        clauses.append(sa.or_(*either))
    if query.tools:
        clauses.append(
            sa.exists().where(
                ExecutionToolCall.scope_id == Execution.scope_id,
                ExecutionToolCall.execution_id == Execution.id,
                sa.or_(*(_tool_matches(pattern) for pattern in query.tools)),
            )
        )
    if query.created_from is not None:
        clauses.append(Execution.created_at >= validation.aware(query.created_from, "from"))
    if query.created_to is not None:
        clauses.append(Execution.created_at <= validation.aware(query.created_to, "to"))
    if query.after is not None:
        clauses.append(Execution.created_at > validation.aware(query.after, "after"))
    if query.code_contains:
        needle = f"%{like_literal(query.code_contains)}%"
        clauses.append(backend.contains_text(Execution.code, needle, LIKE_ESCAPE))
    if query.had_interaction is not None:
        has_one = sa.exists().where(
            ExecutionInteraction.scope_id == Execution.scope_id,
            ExecutionInteraction.execution_id == Execution.id,
        )
        clauses.append(has_one if query.had_interaction else ~has_one)
    return clauses


def _ordering(query: ExecutionQuery) -> str:
    if query.sort not in ("created_at", "duration_ms") or query.direction not in ("asc", "desc"):
        raise ValidationError(f"cannot sort by {query.sort!r} {query.direction!r}")
    return f"executions:{query.sort}:{query.direction}"


def page_statement(backend: Backend, scope_id: str, query: ExecutionQuery) -> sa.Select[Any]:
    """The SELECT of one page (one row more than the page, to know if another follows)."""
    limit = validation.positive_int(query.limit, "limit", maximum=MAX_PAGE)
    descending = query.direction == "desc"
    ordering = _ordering(query)
    clauses = filters(backend, scope_id, query)
    statement = sa.select(*Execution.__table__.c)
    key: tuple[Any, ...]
    order: list[Any]
    if query.sort == "created_at":
        key = (Execution.created_at, Execution.id)
        order = [column.desc() if descending else column.asc() for column in key]
        if query.cursor is not None:
            created_at, execution_id = cursors.decode(query.cursor, ordering, 2)
            position = sa.tuple_(cursor_timestamp(created_at), cursor_uuid(execution_id))
            clauses.append(sa.tuple_(*key) < position if descending else sa.tuple_(*key) > position)
    else:
        missing = Execution.duration_ms.is_(None)
        key = (Execution.duration_ms, Execution.id)
        order = [missing.asc(), *(c.desc() if descending else c.asc() for c in key)]
        if query.cursor is not None:
            was_missing, duration, execution_id = cursors.decode(query.cursor, ordering, 3)
            after_id = (
                Execution.id < cursor_uuid(execution_id)
                if descending
                else (Execution.id > cursor_uuid(execution_id))
            )
            if was_missing:
                clauses.append(sa.and_(missing, after_id))
            else:
                position = sa.tuple_(_integer(duration), cursor_uuid(execution_id))
                beyond = sa.tuple_(*key) < position if descending else sa.tuple_(*key) > position
                clauses.append(sa.or_(sa.and_(~missing, beyond), missing))
    return statement.where(*clauses).order_by(*order).limit(limit + 1)


def next_cursor(query: ExecutionQuery, last: Any) -> str:
    """The cursor that continues after ``last`` (an ExecutionRecord)."""
    ordering = _ordering(query)
    if query.sort == "created_at":
        return cursors.encode(ordering, [last.created_at.isoformat(), str(last.id)])
    return cursors.encode(ordering, [last.duration_ms is None, last.duration_ms, str(last.id)])


def cursor_timestamp(value: Any) -> datetime:
    """A timestamp read from a cursor (``ValidationError`` if it is not one)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError("malformed cursor") from None
    if parsed.tzinfo is None:
        raise ValidationError("malformed cursor")
    return parsed


def cursor_uuid(value: Any) -> uuid.UUID:
    """An id read from a cursor (``ValidationError`` if it is not one)."""
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        raise ValidationError("malformed cursor") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("malformed cursor")
    return value
