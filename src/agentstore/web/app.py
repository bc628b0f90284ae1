"""The ASGI application: the routes, the token every request must carry when the server
has one, and errors as JSON (the error's class and message, never a traceback)."""

from __future__ import annotations

import hashlib
import hmac
from http import HTTPStatus

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentstore.async_store import AsyncAgentStore
from agentstore.errors import (
    AgentStoreError,
    NotFoundError,
    NotMigratedError,
    StoreUnavailableError,
    ValidationError,
)
from agentstore.web.api import api_routes
from agentstore.web.pages import page_routes

#: The cookie that stands for the token once a browser has shown it (``?token=``), so
#: that the links it follows need not carry it.
COOKIE = "agentstore_token"
#: Seconds between two reads of a run's journal when the database cannot notify.
POLL_INTERVAL = 1.0

STATUS_OF: list[tuple[type[AgentStoreError], int]] = [
    (ValidationError, 400),
    (NotFoundError, 404),
    (StoreUnavailableError, 503),
    (NotMigratedError, 503),  # the server runs, its database cannot answer yet
]


def create_app(
    store: AsyncAgentStore, *, token: str | None = None, poll_interval: float = POLL_INTERVAL
) -> Starlette:
    """The read-only API (and dashboard) over ``store``, reached by handlers as
    ``request.app.state.store``. With a ``token``, every request must carry it: as
    ``Authorization: Bearer TOKEN``, as ``?token=TOKEN`` (which also sets a cookie, so a
    browser's next requests need not), or with that cookie. ``poll_interval``: seconds
    between reads of a followed journal where the database cannot notify (SQLite, a
    pooler in transaction mode)."""
    app = Starlette(
        routes=[*api_routes(), *page_routes()],
        exception_handlers={
            AgentStoreError: store_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.state.store = store
    app.state.poll_interval = poll_interval
    if token is not None:
        if not token:
            raise ValidationError("the token must not be empty")
        app.add_middleware(TokenRequired, token=token)
    return app


def error_response(error: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


async def store_error(_request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 500)
    return error_response(type(exc).__name__, str(exc), status)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    name = HTTPStatus(exc.status_code).phrase.replace(" ", "")
    return error_response(name, exc.detail, exc.status_code)


async def internal_error(_request: Request, exc: Exception) -> Response:
    # The server logs the traceback (the exception goes on to it); the client learns
    # nothing of the internals.
    return error_response("InternalServerError", "internal error (see the server's log)", 500)


def _equal(given: str, expected: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


class TokenRequired:
    """Refuses (401) every request that does not carry the token; compared in constant
    time. A request that shows it as ``?token=`` gets the cookie that stands for it
    (a digest of the token, not the token itself)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode("utf-8", "surrogateescape")
        self.cookie = hmac.new(self.token, b"agentstore serve cookie", hashlib.sha256).hexdigest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        from_query = QueryParams(scope.get("query_string", b"")).get("token")
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        by_header = scheme.lower() == "bearer" and _equal(credentials.strip(), self.token)
        by_query = from_query is not None and _equal(from_query, self.token)
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        by_cookie = cookie is not None and _equal(cookie, self.cookie.encode())
        if not (by_header or by_query or by_cookie):
            await self._refuse(scope, receive, send)
            return
        if by_query and not by_cookie:
            send = self._setting_cookie(send)
        await self.app(scope, receive, send)

    def _setting_cookie(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append(
                    "set-cookie", f"{COOKIE}={self.cookie}; HttpOnly; SameSite=Lax; Path=/"
                )
            await send(message)

        return sending

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = error_response(
            "Unauthorized",
            "this server needs its token: Authorization: Bearer TOKEN, or ?token=TOKEN",
            401,
        )
        response.headers["www-authenticate"] = "Bearer"
        await response(scope, receive, send)
