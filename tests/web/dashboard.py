"""The app the dashboard's tests serve (the pages over a store), and a client that
fetches its pages in-process (httpx over ASGI) on an event loop of its own."""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from agentstore import AsyncAgentStore
from agentstore.web.pages import STREAM, page_routes


def dashboard_app(store: AsyncAgentStore, *, stream: bool = False) -> Starlette:
    """The pages over ``store``; ``stream``: with a stand-in for the journal's stream."""
    routes = page_routes()
    if stream:
        routes.append(Route(STREAM, lambda request: Response(status_code=204)))
    app = Starlette(routes=routes)
    app.state.store = store
    return app


class Dashboard:
    """``with Dashboard(url) as pages: pages.ok("/")``."""

    def __init__(self, url: str, *, stream: bool = False) -> None:
        self._runner = asyncio.Runner()
        self._store = AsyncAgentStore.open(url)
        transport = httpx.ASGITransport(app=dashboard_app(self._store, stream=stream))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://dashboard")

    def get(self, path: str) -> httpx.Response:
        return self._runner.run(self._client.get(path))

    def ok(self, path: str) -> str:
        """The page at ``path``, which must be there."""
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:2000])
        return response.text

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._runner.run(self._client.aclose())
        self._runner.run(self._store.close())
        self._runner.close()
