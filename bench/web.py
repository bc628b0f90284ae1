"""The HTTP API's latency on the listing benchmark's database (1,000,000 executions in 50
scopes, ``bench/listing.py``'s seed and cache): what going through ``agentstore serve``
adds to the asyncio face's own call.

The server is ``agentstore serve`` as a person runs it: a process of its own (uvicorn
serving ``create_app`` over an ``AsyncAgentStore``) on a free port of 127.0.0.1. The
client is an ``httpx.Client`` keeping its one connection alive; a request is timed until
its whole body has arrived (not parsed). The direct call is ``await
store.executions.list(scope, query)`` (or ``meta``) on an ``AsyncAgentStore`` in this
process, on the same database.

Three cases: ``GET /api/executions?scope=S`` (the default page), the same with
``bench/listing.py``'s three filters (status, tool glob, 7-day range), and
``GET /api/executions/meta`` with those filters. Each sample is a pair on one scope (the
scopes taken in turn), the HTTP request and the direct call, their order alternating so
that neither always finds the other's pages cached. Before the warm-up, each case's
answer through HTTP is checked equal to the direct call's (the same JSON: ids, cursor,
counts), so both figures are of the same work. Reported: the HTTP p50 as the figure,
the direct p50 as the raw column, p95s in the note.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from agentstore import AsyncAgentStore, ExecutionQuery
from agentstore.records import plain
from bench.harness import Context, Row, percentile
from bench.listing import SCOPES, seeded_database, three_filters

COUNT, QUICK_COUNT = 1_000_000, 5_000
# The server reads its database from its argument, never from the caller's environment.
HIDDEN = ("AGENTSTORE_DATABASE_URL", "AGENTSTORE_SCHEMA", "AGENTSTORE_SERVE_TOKEN")


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # the API's path; its last part names the store's call
    filtered: bool
    samples: int  # pairs measured at full scale
    quick_samples: int


CASES = (
    Case("list, default page", "/api/executions", filtered=False, samples=50, quick_samples=5),
    Case("list, 3 filters", "/api/executions", filtered=True, samples=50, quick_samples=5),
    # meta counts every match in the scope: 100-200 ms a call, so fewer samples.
    Case("meta, 3 filters", "/api/executions/meta", filtered=True, samples=25, quick_samples=3),
)


def query_of(case: Case, now: datetime) -> ExecutionQuery:
    return three_filters(now) if case.filtered else ExecutionQuery()


def params_of(case: Case, scope: str, now: datetime) -> httpx.QueryParams:
    """The query string that asks the API for ``query_of(case, now)`` on ``scope``."""
    params: list[tuple[str, str | int | float | bool | None]] = [("scope", scope)]
    if case.filtered:
        query = three_filters(now)
        assert query.created_from is not None and query.created_to is not None
        params += [("status", status) for status in query.statuses]
        params += [("tool", tool) for tool in query.tools]
        params += [("from", query.created_from.isoformat())]
        params += [("to", query.created_to.isoformat())]
    return httpx.QueryParams(params)


async def direct(store: AsyncAgentStore, case: Case, scope: str, now: datetime) -> Any:
    if case.path.endswith("/meta"):
        return await store.executions.meta(scope, query_of(case, now))
    return await store.executions.list(scope, query_of(case, now))


def fetch(client: httpx.Client, case: Case, scope: str, now: datetime) -> httpx.Response:
    response = client.get(case.path, params=params_of(case, scope, now))
    if response.status_code != 200:
        raise RuntimeError(f"GET {response.url}: {response.status_code} {response.text}")
    return response


@contextlib.contextmanager
def served(url: str) -> Iterator[str]:
    """``agentstore serve`` on a free port of 127.0.0.1; its base URL."""
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN}
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "agentstore", "serve", "--url", url, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # "agentstore: listening on http://…"
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if not found:
                process.wait(timeout=30)
                errors.seek(0)
                raise RuntimeError(f"agentstore serve did not start: {line!r} {errors.read()}")
            yield found.group(0)
        finally:
            process.send_signal(signal.SIGINT)  # what Ctrl-C does: it closes its store
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def same_answer(
    client: httpx.Client, store_answer: Any, case: Case, scope: str, now: datetime
) -> None:
    """The API answers what the store answers (as JSON: the same ids, cursor and
    counts), and finds something: the figures are of the same, real work."""
    expected = json.loads(json.dumps(plain(store_answer)))
    got = fetch(client, case, scope, now).json()
    if case.path.endswith("/meta"):
        shown: dict[str, Any] = {k: (got.get(k), expected[k]) for k in ("total", "filtered")}
        assert expected["filtered"] > 0, f"nothing matched {case.name}: the seed is wrong"
    else:
        ids = [[item["id"] for item in answer.get("items", [])] for answer in (got, expected)]
        shown = {"ids": ids, "next_cursor": [got.get("next_cursor"), expected["next_cursor"]]}
        assert expected["items"], f"nothing matched {case.name}: the seed is wrong"
    assert got == expected, f"{case.name}: HTTP and the store disagree (HTTP, store): {shown}"


async def measure(
    url: str, base: str, now: datetime, quick: bool
) -> dict[Case, tuple[list[float], list[float]]]:
    """Per case, milliseconds through HTTP and of the direct call, sampled in pairs."""
    measured = {}
    warmup = 1 if quick else 3
    rotation = itertools.cycle(f"scope-{n}" for n in range(SCOPES))
    # The sync client blocks this loop while it waits for the server: nothing else runs
    # on the loop, and the server is another process.
    async with AsyncAgentStore.open(url) as store:
        with httpx.Client(base_url=base, timeout=120) as client:
            for case in CASES:
                same_answer(client, await direct(store, case, "scope-3", now), case, "scope-3", now)
                through_http: list[float] = []
                directly: list[float] = []
                pairs = case.quick_samples if quick else case.samples
                for n in range(warmup + pairs):
                    scope = next(rotation)
                    http_first = n % 2 == 0
                    for step in (0, 1):
                        started = time.perf_counter()
                        if (step == 0) == http_first:
                            fetch(client, case, scope, now)
                            samples = through_http
                        else:
                            await direct(store, case, scope, now)
                            samples = directly
                        if n >= warmup:
                            samples.append((time.perf_counter() - started) * 1000)
                measured[case] = (through_http, directly)
    return measured


def run(context: Context) -> None:
    count = QUICK_COUNT if context.quick else COUNT
    for dialect in context.dialects:
        started = time.monotonic()
        url, now = seeded_database(context, dialect, count)
        ready = time.monotonic() - started
        print(f"web       {dialect}: {count:,} executions ready in {ready:.0f} s", flush=True)
        with served(url) as base:
            measured = asyncio.run(measure(url, base, now, context.quick))
        for case, (through_http, directly) in measured.items():
            http_p50, direct_p50 = percentile(through_http, 0.5), percentile(directly, 0.5)
            context.report.add(
                Row(
                    "web",
                    f"{dialect}: {case.name} p50 ({count:,} executions)",
                    "ms",
                    http_p50,
                    direct_p50,
                    higher_is_better=False,
                    notes=f"HTTP +{http_p50 - direct_p50:.1f} ms; p95 HTTP "
                    f"{percentile(through_http, 0.95):.1f} ms, direct "
                    f"{percentile(directly, 0.95):.1f} ms; {len(directly)} pairs; "
                    "raw: the direct call on AsyncAgentStore",
                )
            )
