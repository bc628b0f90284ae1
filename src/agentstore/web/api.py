"""The JSON endpoints: the same shapes as the command's ``--json``, read through the
asyncio face. Read-only: every route answers GET (and HEAD) only. An interaction's
private response never leaves the server: it is not even named in an answer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from agentstore.async_store import AsyncAgentStore
from agentstore.executions import ExecutionQuery
from agentstore.executions.scopes import DEFAULT_SCOPES_PAGE
from agentstore.records import plain
from agentstore.web import params
from agentstore.web.journal import follow_journal

PRIVATE = "response_private"
#: Events a journal read without ``after`` returns (the latest), and the most at once.
LATEST_EVENTS, MAX_EVENTS = 50, 1000


def api_routes() -> list[BaseRoute]:
    """The API's routes, each a plain function of the request."""
    return [
        Route("/api/runs", list_runs),
        Route("/api/runs/{run_id}", show_run),
        Route("/api/runs/{run_id}/events", run_events),
        Route("/api/runs/{run_id}/events/stream", stream_run_events),
        Route("/api/executions", list_executions),
        Route("/api/executions/meta", execution_meta),
        Route("/api/executions/{execution_id}", show_execution),
        Route("/api/scopes", list_scopes),
    ]


def store_of(request: Request) -> AsyncAgentStore:
    store: AsyncAgentStore = request.app.state.store
    return store


def public(value: Any) -> Any:
    """JSON-ready ``value`` without any private response, at any depth."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if k != PRIVATE}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def answer(value: Any) -> Response:
    return JSONResponse(public(plain(value)))


async def list_runs(request: Request) -> Response:
    """``?status=S&limit=N&cursor=C``: runs newest first (a ``RunPage``)."""
    page = await store_of(request).runs.list(
        status=params.one(request, "status") or None,
        limit=params.integer(request, "limit", 50),
        cursor=params.one(request, "cursor") or None,
    )
    return answer(page)


async def show_run(request: Request) -> Response:
    """The run's snapshot (a ``RunSnapshot``)."""
    return answer(await store_of(request).runs.snapshot(request.path_params["run_id"]))


async def run_events(request: Request) -> Response:
    """``?after=ID&limit=N``: the run's events after the event ``ID`` in the order they
    were committed (as ``events.tail``); without ``after``, its latest. ``after`` in the
    answer: what to pass next."""
    store, run_id = store_of(request), request.path_params["run_id"]
    await store.runs.get(run_id)  # an unknown run is a 404, not an empty list
    after = params.one(request, "after")
    if after is None:
        events = await store.events.list(run_id, params.integer(request, "limit", LATEST_EVENTS))
        last = 0
    else:
        last = params.integer(request, "after", 0)
        limit = params.integer(request, "limit", MAX_EVENTS)
        events = await store.events.tail(run_id, after_id=last, limit=limit)
    return answer({"items": events, "after": events[-1].id if events else last})


async def stream_run_events(request: Request) -> Response:
    """Server-Sent Events of the run's journal: its latest events (or those after
    ``?after=ID``, or after the ``Last-Event-ID`` a reconnecting ``EventSource``
    sends), then each new one as it is committed. Each message: ``id`` the event's id,
    ``data`` the event as JSON."""
    store, run_id = store_of(request), request.path_params["run_id"]
    run = await store.runs.get(run_id)
    resumed = request.headers.get("last-event-id")
    after: int | None = None
    if params.one(request, "after") is not None:
        after = params.integer(request, "after", 0)
    elif resumed is not None and resumed.strip().isdigit():
        after = int(resumed)
    latest = params.integer(request, "limit", LATEST_EVENTS)
    stream = follow_journal(store, run.id, after, latest, request.app.state.poll_interval)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def list_executions(request: Request) -> Response:
    """``?scope=S`` and the filters (see ``params.execution_query``): one page."""
    scope = params.required(request, "scope")
    return answer(
        await store_of(request).executions.list(
            scope, params.execution_query(request.query_params.multi_items())
        )
    )


async def execution_meta(request: Request) -> Response:
    """The facets and chart buckets of the executions the filters select."""
    scope = params.required(request, "scope")
    return answer(
        await store_of(request).executions.meta(
            scope, params.execution_query(request.query_params.multi_items())
        )
    )


async def show_execution(request: Request) -> Response:
    """``?scope=S``: the execution, its tool calls and its interactions."""
    store, scope = store_of(request), params.required(request, "scope")
    execution_id = request.path_params["execution_id"]
    view = await store.executions.get(scope, execution_id)
    calls = await store.executions.list_tool_calls(scope, execution_id)
    interactions = await store.executions.list_interactions(scope, execution_id)
    return answer({"execution": view.execution, "tool_calls": calls, "interactions": interactions})


async def list_scopes(request: Request) -> Response:
    """``?limit=N&cursor=C``: the scopes that hold executions (a ``ScopePage``)."""
    page = await store_of(request).executions.scopes(
        limit=params.integer(request, "limit", DEFAULT_SCOPES_PAGE),
        after=params.one(request, "cursor") or None,
    )
    return answer(page)


def filters(request: Request) -> ExecutionQuery:
    """The executions filters of the query string (see ``params.execution_query``)."""
    return params.execution_query(request.query_params.multi_items())
