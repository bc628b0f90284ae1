"""The dashboard's tests' client: the app's pages fetched in-process (httpx over ASGI),
on an event loop of its own (the asyncio face's connections belong to the loop that
made them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

import httpx
from starlette.applications import Starlette

from agentstore import AsyncAgentStore
from agentstore.web import create_app
from agentstore.web.pages import page_routes


def pages_only(store: AsyncAgentStore) -> Starlette:
    """The pages without the API (so without the journal's stream)."""
    app = Starlette(routes=page_routes())
    app.state.store = store
    return app


class Dashboard:
    """``with Dashboard(url) as pages: pages.ok("/")``, on ``create_app`` unless
    ``app`` makes another."""

    def __init__(self, url: str, app: Callable[[AsyncAgentStore], Starlette] = create_app) -> None:
        self._runner = asyncio.Runner()
        self._store = AsyncAgentStore.open(url)
        transport = httpx.ASGITransport(app=app(self._store))
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
