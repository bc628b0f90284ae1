"""``agentstore serve``: the read-only HTTP API (and dashboard) on uvicorn, over the
asyncio face. Listens on 127.0.0.1 unless told otherwise; any other address needs a
token, which every request must then carry (see ``agentstore.web.create_app``)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
from typing import Any

from agentstore.async_store import AsyncAgentStore
from agentstore.cli.output import CommandError, subcommand
from agentstore.store import AgentStore

TOKEN_VARIABLE = "AGENTSTORE_SERVE_TOKEN"
#: Seconds open streams (a followed journal) get to end when the server stops.
GRACE = 1


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    serve = subcommand(commands, "serve", "the read-only HTTP API and dashboard")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8765, help="0: any free port")
    serve.add_argument(
        "--token",
        default=None,
        help=f"required of every request (default: ${TOKEN_VARIABLE}); "
        "needed to listen on an address other than loopback",
    )
    serve.set_defaults(handler=serve_forever, precheck=before_serving)


def token_of(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get(TOKEN_VARIABLE) or None


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def before_serving(args: argparse.Namespace) -> None:
    """Refused before the database is read: an address others can reach without a
    token, or a missing web extra."""
    if not loopback(args.host) and token_of(args) is None:
        raise CommandError(
            f"refusing to listen on {args.host} without a token: "
            f"give --token or set {TOKEN_VARIABLE} (or listen on 127.0.0.1)"
        )
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CommandError(
            f"agentstore serve needs the web extra ({exc.name} is missing): "
            "pip install 'agentstore[web]'"
        ) from None


def serve_forever(_store: AgentStore, args: argparse.Namespace) -> int:
    import uvicorn  # present: see before_serving

    from agentstore.web import create_app

    token = token_of(args)

    async def serve() -> None:
        async with AsyncAgentStore.open(args.url, schema=args.schema) as store:
            listening = bound(args.host, args.port)
            config = uvicorn.Config(
                create_app(store, token=token),
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=GRACE,
            )
            print(f"agentstore: listening on {address(listening)} (Ctrl-C stops)", flush=True)
            await uvicorn.Server(config).serve(sockets=[listening])

    asyncio.run(serve())
    return 0


def bound(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (bound here, so that port 0 is known)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        [(family, kind, protocol, _, where)] = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM
        )[:1]
        listening = socket.socket(family, kind, protocol)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(where)
        listening.listen(128)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listening


def address(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
