"""The dashboard's pages, rendered by the app over a seeded store on SQLite and on
PostgreSQL: what each shows is what the store has, filters and cursors reach every row
once, a name that is nothing is a 404 page, and every string shows as itself (escaped),
however hostile. A private response never reaches a page."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from markupsafe import escape

from agentstore import AgentStore, ExecutionQuery, TaskDraft, TaskStatus
from agentstore.models import Execution
from agentstore.web import create_app
from agentstore.web.listing import Filters
from agentstore.web.pages import RUNS_PAGE, STREAM
from tests.support.databases import DIALECTS
from tests.web.dashboard import Dashboard, pages_only

HOSTILE = "<script>alert('x')</script>&amp;\"quoted\""
ESCAPED = str(escape(HOSTILE))  # as Jinja2 writes it
SECRET = "private-answer-never-shown"
SCOPE = "tenant-a"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STATUSES = ["completed", "failed", "running", "completed", "cancelled"]


@dataclass
class Seeded:
    url: str
    run: uuid.UUID  # the busy run, with the hostile goal
    held: uuid.UUID
    execution: uuid.UUID  # the one with tool calls and a question
    hostile_execution: uuid.UUID


def seed(store: AgentStore) -> Seeded:
    for n in range(RUNS_PAGE + 2):  # more than one page of runs
        store.runs.create(f"quiet run {n}", "/repo", "completed" if n % 2 else "running")
    run = store.runs.create(HOSTILE, "/repo", "running")
    drafts = [TaskDraft(f"task {n}", f"do {n}") for n in range(4)]
    tasks = store.tasks.replace_pending(run.id, drafts)
    [done] = store.tasks.claim_next("worker-a", run_id=run.id, lease=timedelta(hours=1))
    store.tasks.complete(done.id, "built it", attempt=done.attempt)
    [asking] = store.tasks.claim_next("worker-a", run_id=run.id, lease=timedelta(hours=1))
    store.tasks.wait(asking.id, {"approve": "deploy?"}, attempt=asking.attempt)
    [held] = store.tasks.claim_next(HOSTILE, run_id=run.id, lease=timedelta(hours=1))
    store.approvals.add(run.id, "checker", "approved", "looks right")
    store.checkpoints.add(run.id, "running", {"step": 3, "note": HOSTILE})
    store.events.add(run.id, "planner", "note", HOSTILE)
    assert held.id in {t.id for t in tasks}

    for n in range(30):  # more than a page of executions, over two hours
        made = store.executions.create(
            SCOPE,
            f"step({n})",
            status="running",
            trigger="cli" if n % 3 else ("mcp", {"n": n}),
            started_at=START + timedelta(minutes=4 * n),
        )
        status = STATUSES[n % len(STATUSES)]
        if status != "running":
            store.executions.finish(SCOPE, made.id, status, completed_at=made.started_at)
        with store.engine.begin() as connection:  # spread over time, as the chart buckets
            connection.execute(
                sa.update(Execution)
                .where(Execution.id == made.id)
                .values(created_at=made.started_at)
            )
    execution = store.executions.create(SCOPE, "fetch()\nsummarize()", trigger="mcp")
    first = store.executions.record_tool_call(SCOPE, execution.id, "github.issues.list")
    store.executions.finish_tool_call(SCOPE, first.id, "completed", result=["#1"])
    second = store.executions.record_tool_call(SCOPE, execution.id, "slack.post", args={"t": 1})
    store.executions.finish_tool_call(SCOPE, second.id, "failed", error_text="rate limited")
    question = store.executions.request_interaction(
        SCOPE, execution.id, "approval", purpose="Post it?"
    )
    store.executions.resolve_interaction(SCOPE, question.id, {"ok": True}, {"token": SECRET})
    store.executions.finish(SCOPE, execution.id, "completed", result={"posted": 1}, logs=["hi"])
    hostile = store.executions.create(SCOPE, HOSTILE, status="failed", trigger=HOSTILE[:40])
    store.executions.create("tenant-b", "elsewhere()")
    return Seeded(database_url(store), run.id, held.id, execution.id, hostile.id)


def database_url(store: AgentStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=DIALECTS)
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    """One seeded database per dialect for the whole module (the pages only read)."""
    databases = request.getfixturevalue(f"{request.param}_databases")
    url = databases.migrated()
    with AgentStore.open(url) as store:
        yield seed(store)
    databases.drop(url)


@pytest.fixture(scope="module")
def store(seeded: Seeded) -> Iterator[AgentStore]:
    with AgentStore.open(seeded.url) as opened:
        yield opened


@pytest.fixture(scope="module")
def dashboard(seeded: Seeded) -> Iterator[Dashboard]:
    with Dashboard(seeded.url) as opened:
        yield opened


def ids(page: str, table: str) -> list[str]:
    """The data-id of each row of the table ``table`` of ``page``, in order."""
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', page, re.S)
    assert body, f"no table {table}"
    return re.findall(r'<tr data-id="([^"]+)"', body.group(0))


def attributes(page: str, tag: str, marker: str) -> list[dict[str, str]]:
    """The attributes of each ``tag`` element that has ``marker`` in its opening tag."""
    found = []
    for opening in re.findall(rf"<{tag}\b[^>]*>", page):
        if marker in opening:
            pairs = re.findall(r'([\w-]+)="([^"]*)"', opening)
            found.append({name: html.unescape(value) for name, value in pairs})
    return found


def next_link(page: str) -> str | None:
    found = re.search(r'<a rel="next"[^>]*href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def test_the_runs_page_lists_every_run_once_through_its_cursor(
    dashboard: Dashboard, store: AgentStore
) -> None:
    shown: list[str] = []
    path: str | None = "/"
    while path is not None:
        page = dashboard.ok(path)
        shown += ids(page, "runs")
        path = next_link(page)
    everything = store.runs.list(limit=100).items
    assert shown == [str(run.id) for run in everything]


def test_the_runs_page_filters_by_status_and_counts_tasks(
    dashboard: Dashboard, store: AgentStore, seeded: Seeded
) -> None:
    page = dashboard.ok("/runs?status=running")
    running = store.runs.list(status="running", limit=RUNS_PAGE).items
    assert ids(page, "runs") == [str(run.id) for run in running]
    row = re.search(rf'<tr data-id="{seeded.run}".*?</tr>', page, re.S)
    assert row
    chips = attributes(row.group(0), "span", 'class="chip st-')
    assert {c["data-status"]: int(c["data-count"]) for c in chips} == {
        "pending": 1,
        "in_progress": 1,
        "waiting": 1,
        "completed": 1,
    }


def test_the_run_page_shows_its_tasks_claims_attempts_approvals_checkpoint_and_journal(
    dashboard: Dashboard, store: AgentStore, seeded: Seeded
) -> None:
    page = dashboard.ok(f"/runs/{seeded.run}")
    snapshot = store.runs.snapshot(seeded.run)
    assert ids(page, "held") == [str(seeded.held)]
    held = re.search(r'<table[^>]*id="held".*?</table>', page, re.S)
    assert held and ESCAPED in held.group(0)  # the worker's name
    assert "in 59m" in held.group(0) or "in 1h" in held.group(0)  # the lease, an hour
    assert ids(page, "waiting") == [str(t.id) for t in snapshot.tasks[TaskStatus.WAITING]]
    assert ids(page, "journal") == [str(event.id) for event in snapshot.recent_events]
    groups = {g["data-status"] for g in attributes(page, "details", 'class="group"')}
    assert groups == {"pending", "in_progress", "waiting", "completed"}
    assert "built it" in page and "looks right" in page
    assert "&#34;step&#34;: 3" in page or '"step": 3' in html.unescape(page)
    # The app streams the journal: the page follows it from its last event on.
    [journal] = attributes(page, "tbody", "data-stream")
    assert journal["data-stream"] == STREAM.format(run_id=seeded.run)
    assert journal["data-after"] == str(snapshot.recent_events[-1].id)
    assert '<script src="/static/journal.js" defer></script>' in page


def test_without_the_journals_stream_the_run_page_asks_for_none(seeded: Seeded) -> None:
    with Dashboard(seeded.url, pages_only) as pages:
        page = pages.ok(f"/runs/{seeded.run}")
    assert 'id="journal"' in page
    assert "data-stream" not in page and "journal.js" not in page


@pytest.mark.parametrize(
    "path",
    [
        f"/runs/{uuid.uuid4()}",
        "/runs/not-an-id",
        f"/executions/{uuid.uuid4()}?scope={SCOPE}",
        "/executions/not-an-id?scope=tenant-a",
    ],
)
def test_what_does_not_exist_is_a_404_page(dashboard: Dashboard, path: str) -> None:
    response = dashboard.get(path)
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text


def test_an_execution_of_another_scope_is_not_found_there(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    assert dashboard.get(f"/executions/{seeded.execution}?scope=tenant-b").status_code == 404
    assert dashboard.get(f"/executions/{seeded.execution}").status_code == 400  # no scope


def test_the_executions_page_without_a_scope_offers_the_stores_scopes(
    dashboard: Dashboard,
) -> None:
    page = dashboard.ok("/executions")
    assert 'id="executions"' not in page
    listed = re.search(r'<ul id="scope-list">.*?</ul>', page, re.S)
    assert listed and re.findall(r"<a [^>]*>([^<]*)</a>", listed.group(0)) == [SCOPE, "tenant-b"]


def listing_of(store: AgentStore, query: ExecutionQuery) -> list[str]:
    shown, cursor = [], None
    while True:
        page = store.executions.list(SCOPE, replace(query, cursor=cursor))
        shown += [str(e.id) for e in page.items]
        if page.next_cursor is None:
            return shown
        cursor = page.next_cursor


def query_of(filters: str) -> ExecutionQuery:
    return Filters.of(parse_qsl(filters)).query()


@pytest.mark.parametrize(
    "filters",
    [
        "",
        "&status=completed&status=failed",
        "&trigger=mcp&sort=duration_ms:asc",
        "&sort=duration&had_interaction=true",
        "&tool=github.*",
        "&had_interaction=no&from=2026-03-01T10:00&to=2026-03-01T10:40Z",
    ],
)
def test_the_executions_list_matches_the_store_through_its_cursor(
    dashboard: Dashboard, store: AgentStore, filters: str
) -> None:
    shown: list[str] = []
    path: str | None = f"/executions?scope={SCOPE}&limit=7{filters}"
    while path is not None:
        page = dashboard.ok(path)
        shown += ids(page, "executions")
        path = next_link(page)
    query = query_of(f"scope={SCOPE}{filters}")
    assert shown and shown == listing_of(store, replace(query, limit=7))
    assert len(shown) == len(set(shown)) == store.executions.meta(SCOPE, query).filtered


def test_the_facets_and_the_chart_are_the_stores_meta(
    dashboard: Dashboard, store: AgentStore
) -> None:
    page = dashboard.ok(f"/executions?scope={SCOPE}&trigger=cli")
    meta = store.executions.meta(SCOPE, ExecutionQuery(triggers=["cli"]))
    facets = attributes(page, "a", "data-facet")
    by_status = {
        f["data-value"]: int(f["data-count"]) for f in facets if f["data-facet"] == "status"
    }
    assert by_status == meta.statuses
    tools = {f["data-value"]: int(f["data-count"]) for f in facets if f["data-facet"] == "tool"}
    assert tools == dict(meta.top_tools)
    bars = attributes(page, "rect", 'class="bar')
    assert sorted(
        (b["data-bucket"], b["data-status"], int(b["data-count"])) for b in bars
    ) == sorted(
        (bucket.start.isoformat(), status, count)
        for bucket in meta.chart
        for status, count in bucket.counts.items()
    )
    assert len(meta.chart) > 1 and all(float(b["height"]) > 0 for b in bars)
    # A facet's link applies it, keeping the other filters, on the first page.
    [failed] = [f for f in facets if f["data-facet"] == "status" and f["data-value"] == "failed"]
    assert failed["href"] == f"/executions?scope={SCOPE}&trigger=cli&status=failed"


def test_a_bad_filter_is_a_400_that_shows_it_as_written(dashboard: Dashboard) -> None:
    for bad in ("status=%3Cb%3Ebogus%3C%2Fb%3E", "sort=sideways", "from=yesterday", "limit=0"):
        response = dashboard.get(f"/executions?scope={SCOPE}&{bad}")
        assert response.status_code == 400, bad
        assert 'id="error"' in response.text and 'id="filters"' in response.text
        assert "<b>bogus" not in response.text
    assert "&lt;b&gt;bogus" in dashboard.get(f"/executions?scope={SCOPE}&status=<b>bogus").text
    assert dashboard.get(f"/executions?scope={SCOPE}&cursor=garbage").status_code == 400
    assert dashboard.get("/runs?status=<i>x").status_code == 400


def test_hostile_strings_show_as_literals(dashboard: Dashboard, seeded: Seeded) -> None:
    pages = [
        dashboard.ok("/"),
        dashboard.ok(f"/runs/{seeded.run}"),
        dashboard.ok(f"/executions?scope={SCOPE}&code=<script>"),
        dashboard.ok(f"/executions/{seeded.hostile_execution}?scope={SCOPE}"),
    ]
    for page in pages:
        assert "<script>alert" not in page
        assert ESCAPED in page
    # The code filter is a literal substring: only the hostile execution matches it.
    assert ids(pages[2], "executions") == [str(seeded.hostile_execution)]
    assert 'value="&lt;script&gt;"' in pages[2]


def test_the_execution_page_shows_its_code_result_logs_timeline_and_interactions(
    dashboard: Dashboard, store: AgentStore, seeded: Seeded
) -> None:
    page = dashboard.ok(f"/executions/{seeded.execution}?scope={SCOPE}")
    calls = store.executions.list_tool_calls(SCOPE, seeded.execution)
    lanes = attributes(page, "div", 'class="lane"')
    assert [lane["data-tool"] for lane in lanes] == ["github.issues.list", "slack.post"]
    assert [lane["data-status"] for lane in lanes] == ["completed", "failed"]
    started = store.executions.get(SCOPE, seeded.execution).execution.started_at
    for lane, call in zip(lanes, calls, strict=True):
        offset = (call.started_at - started).total_seconds() * 1000
        assert abs(int(lane["data-start-ms"]) - offset) <= 1
        assert lane["data-duration-ms"] == str(call.duration_ms)
    assert "fetch()\nsummarize()" in page and "rate limited" in page
    assert "&#34;posted&#34;: 1" in page or '"posted": 1' in html.unescape(page)
    interactions = store.executions.list_interactions(SCOPE, seeded.execution)
    assert ids(page, "interactions") == [str(i.id) for i in interactions]
    assert "Post it?" in page
    assert SECRET not in page


def test_the_static_files_are_served(dashboard: Dashboard) -> None:
    for path, kind in (("/static/dashboard.css", "text/css"), ("/static/journal.js", "javascript")):
        response = dashboard.get(path)
        assert response.status_code == 200 and kind in response.headers["content-type"]


def test_with_a_token_the_pages_need_it_as_the_api_does(seeded: Seeded) -> None:
    with Dashboard(seeded.url, lambda store: create_app(store, token="s3cret")) as guarded:
        assert guarded.get("/").status_code == 401
        assert guarded.get(f"/runs/{seeded.run}").status_code == 401
        assert ids(guarded.ok("/?token=s3cret"), "runs")  # which sets the cookie
        assert ids(guarded.ok(f"/runs/{seeded.run}"), "journal")  # that stands for it
