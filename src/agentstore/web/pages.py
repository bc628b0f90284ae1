"""The dashboard: server-rendered pages of runs and of executions, read from the store
in ``request.app.state.store`` (an ``AsyncAgentStore``). Read-only, no build step: Jinja2
templates (every value escaped) and a stylesheet and one small script served from the
package itself.

    /                     runs, newest first (?status=…, ?cursor=…); also /runs
    /runs/{id}            a run: tasks by status, held tasks, attempts, approvals, the
                          latest checkpoint, the journal (following live where the
                          app serves the journal's stream)
    /executions           a scope's executions: filters, facets, chart, list (?scope=…)
    /executions/{id}      an execution (?scope=…): code, result, logs, tool calls on a
                          timeline, interactions (never a private response)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agentstore import validation
from agentstore.async_store import AsyncAgentStore
from agentstore.errors import (
    NotFoundError,
    NotMigratedError,
    StoreUnavailableError,
    ValidationError,
)
from agentstore.statuses import ExecutionStatus, RunStatus, TaskStatus
from agentstore.web.drawing import STACK, chart, timeline
from agentstore.web.listing import SORTS, Filters

HERE = Path(__file__).resolve().parent
RUNS_PAGE = 25
SCOPES = 200  # scopes the picker lists
#: The journal's Server-Sent Events stream; a run's page follows it when the app has it.
STREAM = "/api/runs/{run_id}/events/stream"

Endpoint = Callable[[Request], Awaitable[Response]]


def page_routes() -> list[BaseRoute]:
    """The dashboard's routes, to mount at the root of the app."""
    return [
        Route("/", page(runs_page), name="runs"),
        Route("/runs", page(runs_page), name="runs_list"),
        Route("/runs/{run_id}", page(run_page), name="run"),
        Route("/executions", page(executions_page), name="executions"),
        Route("/executions/{execution_id}", page(execution_page), name="execution"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]


def page(handler: Endpoint) -> Endpoint:
    """``handler`` with the store's refusals shown as pages: a 404 for what does not
    exist, a 400 for a bad filter or cursor, a 503 for a database out of reach."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except NotFoundError as exc:
            return render(request, "error.html", 404, title="Not found", message=str(exc))
        except ValidationError as exc:
            return render(request, "error.html", 400, title="Bad request", message=str(exc))
        except (StoreUnavailableError, NotMigratedError) as exc:
            message = str(exc)
            return render(request, "error.html", 503, title="Unavailable", message=message)

    return endpoint


async def runs_page(request: Request) -> Response:
    store = store_of(request)
    status = request.query_params.get("status") or None
    cursor = request.query_params.get("cursor") or None
    runs = await store.runs.list(status=status, limit=RUNS_PAGE, cursor=cursor)
    counts = await store.tasks.counts([run.id for run in runs.items])
    shown = {"status": status} if status else {}
    following = {**shown, "cursor": runs.next_cursor} if runs.next_cursor else None
    return render(
        request,
        "runs.html",
        runs=runs,
        counts=counts,
        status=status,
        next_page=None if following is None else "?" + urlencode(following),
        first_page=None if cursor is None else "?" + urlencode(shown),
        statuses=list(RunStatus),
        task_statuses=list(TaskStatus),
    )


async def run_page(request: Request) -> Response:
    store = store_of(request)
    run_id = path_id(request, "run_id", "run")
    snapshot = await store.runs.snapshot(run_id)
    counts = (await store.tasks.counts([run_id]))[run_id]
    stream = STREAM.format(run_id=run_id)
    titles = {task.id: task.title for tasks in snapshot.tasks.values() for task in tasks}
    return render(
        request,
        "run.html",
        snapshot=snapshot,
        counts=counts,
        titles=titles,
        stream=stream if serves(request, stream) else None,
        held=snapshot.tasks[TaskStatus.IN_PROGRESS],
        waiting=snapshot.tasks[TaskStatus.WAITING],
    )


async def executions_page(request: Request) -> Response:
    store = store_of(request)
    filters = Filters.of(request.query_params.multi_items())
    scope = filters.one("scope")
    context: dict[str, Any] = {
        "filters": filters,
        "scope": scope,
        "scopes": await scope_choices(store, scope),
        "statuses": list(ExecutionStatus),
        "stack": [status.value for status in STACK],
        "sorts": SORTS,
        "error": None,
        "listing": None,
        "meta": None,
        "chart": None,
    }
    if scope is None:
        return render(request, "executions.html", **context)
    try:
        query = filters.query()
        listing = await store.executions.list(scope, query)
        meta = await store.executions.meta(scope, query)
    except ValidationError as exc:  # the form stays, with what it refused
        return render(request, "executions.html", 400, **{**context, "error": str(exc)})
    return render(
        request,
        "executions.html",
        **{
            **context,
            "listing": listing,
            "meta": meta,
            "chart": chart(meta.chart, meta.bucket_seconds),
        },
    )


async def execution_page(request: Request) -> Response:
    store = store_of(request)
    execution_id = path_id(request, "execution_id", "execution")
    scope = request.query_params.get("scope")
    if not scope:
        raise ValidationError("scope: name the execution's scope (?scope=…)")
    view = await store.executions.get(scope, execution_id)
    calls = await store.executions.list_tool_calls(scope, execution_id)
    interactions = await store.executions.list_interactions(scope, execution_id)
    return render(
        request,
        "execution.html",
        scope=scope,
        execution=view.execution,
        spans=timeline(view.execution, calls, datetime.now(UTC)),
        interactions=interactions,
    )


async def scope_choices(store: AsyncAgentStore, scope: str | None) -> list[str]:
    """The scopes the picker offers: the first ``SCOPES`` that hold executions (the
    picker takes any other typed in), and the one shown."""
    page = await store.executions.scopes(limit=SCOPES)
    return sorted({*(found.scope_id for found in page.items), *([scope] if scope else [])})


def store_of(request: Request) -> AsyncAgentStore:
    store: AsyncAgentStore = request.app.state.store
    return store


def path_id(request: Request, name: str, what: str) -> UUID:
    """The id in the path; one that is not an id names nothing: a 404."""
    text = request.path_params[name]
    try:
        return validation.identifier(text, name)
    except ValidationError:
        raise NotFoundError(f"no {what} {text!r}") from None


def serves(request: Request, path: str) -> bool:
    """Whether the app has a GET route for ``path`` (the journal's stream is the API's:
    without it, a run's page shows the journal as it was, and no script asks for it)."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.routes)


# Templates ------------------------------------------------------------------------------


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago: ``42s``, ``5m``, ``3h``, ``2d``."""
    if moment is None:
        return "-"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    """A JSON value as indented text (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@jinja2.pass_context
def href(context: Any, name: str, query: str = "", **params: Any) -> str:
    """The path of the route ``name`` (under the app's root path), with ``query``."""
    request: Request = context["request"]
    return str(request.url_for(name, **params).path) + query


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(when=when, pretty=pretty)
ENVIRONMENT.globals.update(href=href, age=age)
TEMPLATES = Jinja2Templates(env=ENVIRONMENT)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("now", datetime.now(UTC))
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
