"""The HTTP API answers what the library answers, in the command's ``--json`` shapes:
every endpoint, filters, cursors to the end, meta; bad input is a 400 with the library's
message, a missing row a 404, a database gone a 503, anything else a bare 500; hostile
strings are literals; no private response ever leaves; nothing writes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from agentstore import AgentStore, ExecutionQuery
from agentstore.errors import ValidationError
from agentstore.records import plain
from agentstore.web.api import public
from tests.web.conftest import HOSTILE_SCOPE, SECRET, Api, World


def expected(value: Any) -> Any:
    """``value`` as the API sends it: the command's JSON, without private responses."""
    return public(json.loads(json.dumps(plain(value))))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    assert SECRET not in response.text and "response_private" not in response.text
    return response.json()


def follow(api: Api, path: str, params: dict[str, Any]) -> list[Any]:
    """Every item of a paged listing, cursor after cursor."""
    items, cursor = [], None
    while True:
        page = ok(api.get(path, params={**params, **({"cursor": cursor} if cursor else {})}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def library_pages(read: Any) -> Iterator[Any]:
    cursor = None
    while True:
        page = read(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def test_runs_are_listed_newest_first_to_the_last_page(
    api: Api, store: AgentStore, world: World
) -> None:
    everything = list(library_pages(lambda c: store.runs.list(limit=50, cursor=c)))
    assert follow(api, "/api/runs", {"limit": 3}) == expected(everything)
    assert len(everything) == len(world.runs)
    running = follow(api, "/api/runs", {"status": "running", "limit": 2})
    assert running == expected([run for run in everything if run.status == "running"])


def test_a_run_is_its_snapshot_and_its_journal_pages_by_event_id(
    api: Api, store: AgentStore, world: World
) -> None:
    run_id = world.busy_run
    assert ok(api.get(f"/api/runs/{run_id}")) == expected(store.runs.snapshot(run_id))
    latest = ok(api.get(f"/api/runs/{run_id}/events", params={"limit": 5}))
    assert latest["items"] == expected(store.events.list(run_id, 5))
    journal = store.events.tail(run_id)
    seen, after = [], 0
    while True:
        page = ok(api.get(f"/api/runs/{run_id}/events", params={"after": after, "limit": 4}))
        if not page["items"]:
            assert page["after"] == after
            break
        seen += page["items"]
        after = page["after"]
    assert seen == expected(journal)


FILTERS: list[dict[str, Any]] = [
    {},
    {"status": ["completed", "failed"]},
    {"trigger": ["cli", "unknown"], "sort": "duration:asc"},
    {"tool": ["github.*"], "sort": "duration"},
    {"code": "100%"},
    {"code": "a_b"},
    {"had_interaction": "true", "from": "2026-05-01T12:05:00Z"},
    {"had_interaction": "false", "to": "2026-05-01T13:00:00+00:00", "sort": "created_at:asc"},
]


def query_of(params: dict[str, Any], **paging: Any) -> ExecutionQuery:
    sort, _, direction = params.get("sort", "created_at").partition(":")
    flag = params.get("had_interaction")
    return ExecutionQuery(
        statuses=params.get("status", []),
        triggers=params.get("trigger", []),
        tools=params.get("tool", []),
        code_contains=params.get("code"),
        had_interaction=None if flag is None else flag == "true",
        created_from=datetime.fromisoformat(params["from"]) if "from" in params else None,
        created_to=datetime.fromisoformat(params["to"]) if "to" in params else None,
        sort={"duration": "duration_ms"}.get(sort, sort),  # type: ignore[arg-type]
        direction=direction or "desc",  # type: ignore[arg-type]
        **paging,
    )


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_executions_are_the_librarys_pages_to_the_end_with_their_meta(
    api: Api, store: AgentStore, filters: dict[str, Any]
) -> None:
    params = {"scope": "team-a", **filters}
    listed = follow(api, "/api/executions", {**params, "limit": 7})
    query = query_of(filters, limit=100)
    truth = list(
        library_pages(
            lambda c: store.executions.list("team-a", query_of(filters, limit=100, cursor=c))
        )
    )
    assert listed == expected(truth)
    assert len({item["id"] for item in listed}) == len(listed)
    meta = ok(api.get("/api/executions/meta", params=params))
    assert meta == expected(store.executions.meta("team-a", query))
    assert meta["filtered"] == len(listed)


def test_an_execution_comes_with_its_tool_calls_and_interactions_never_private(
    api: Api, store: AgentStore, world: World
) -> None:
    shown = ok(api.get(f"/api/executions/{world.execution}", params={"scope": "team-a"}))
    assert shown["execution"] == expected(store.executions.get("team-a", world.execution).execution)
    assert [c["tool_path"] for c in shown["tool_calls"]] == ["github.pulls.get", "slack.post"]
    [question] = shown["interactions"]
    assert question["response"] == {"approved": True}
    assert "response_private" not in question
    full = store.executions.list_interactions("team-a", world.execution, include_private=True)
    assert full[0].response_private == {"note": SECRET}  # stored, and kept on the server


def test_scopes_are_listed_once_each_page_by_page(api: Api, world: World) -> None:
    scopes = follow(api, "/api/scopes", {"limit": 1})
    assert sorted(s["scope_id"] for s in scopes) == sorted(world.scopes)
    assert all(s["latest_execution_at"] for s in scopes)


def test_hostile_strings_are_only_literals(api: Api, store: AgentStore) -> None:
    page = ok(api.get("/api/executions", params={"scope": HOSTILE_SCOPE}))
    assert [item["scope_id"] for item in page["items"]] == [HOSTILE_SCOPE]
    for scope in ("%", "team-%", "' OR '1'='1"):
        assert ok(api.get("/api/executions", params={"scope": scope}))["items"] == []
    injected = {"scope": "team-a", "code": "' OR 1=1 --", "tool": "%", "trigger": "' OR ''='"}
    assert ok(api.get("/api/executions", params=injected))["items"] == []
    assert store.executions.meta("team-a").total == 61  # nothing dropped, nothing changed


def library_message(call: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        call()
    return str(refused.value)


def test_bad_values_are_400_with_the_librarys_message(api: Api, store: AgentStore) -> None:
    cases = [
        ("/api/runs", {"status": "bogus"}, lambda: store.runs.list(status="bogus")),
        ("/api/runs", {"limit": "0"}, lambda: store.runs.list(limit=0)),
        ("/api/runs", {"cursor": "garbage"}, lambda: store.runs.list(cursor="garbage")),
        (
            "/api/executions",
            {"scope": "team-a", "status": "bogus"},
            lambda: store.executions.list("team-a", ExecutionQuery(statuses=["bogus"])),
        ),
        (
            "/api/executions",
            {"scope": "team-a", "limit": "1000"},
            lambda: store.executions.list("team-a", ExecutionQuery(limit=1000)),
        ),
        (
            "/api/executions",
            {"scope": "team-a", "sort": "code:up"},
            lambda: store.executions.list("team-a", ExecutionQuery(sort="code", direction="up")),  # type: ignore[arg-type]
        ),
        (
            "/api/executions",
            {"scope": "x" * 300},
            lambda: store.executions.list("x" * 300),
        ),
        ("/api/runs/not-a-uuid", {}, lambda: store.runs.get("not-a-uuid")),
        ("/api/scopes", {"cursor": "garbage"}, lambda: store.executions.scopes(after="garbage")),
    ]
    for path, params, call in cases:
        response = api.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json() == {"error": "ValidationError", "message": library_message(call)}
    for params in (
        {"scope": "team-a", "limit": "ten"},
        {"scope": "team-a", "from": "yesterday"},
        {"scope": "team-a", "had_interaction": "maybe"},
        {"scope": "team-a", "code": "a", "limit": ["1", "2"]},
        {"status": "completed"},  # no scope
        {"scope": "a\x00b"},
    ):
        response = api.get("/api/executions", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"] == "ValidationError"
    assert api.get(f"/api/runs/{uuid.uuid4()}/events", params={"after": "-1"}).status_code == 404


def test_what_is_not_there_is_404(api: Api, world: World) -> None:
    missing = uuid.uuid4()
    for path, params in [
        (f"/api/runs/{missing}", {}),
        (f"/api/runs/{missing}/events", {}),
        (f"/api/runs/{missing}/events/stream", {}),
        (f"/api/executions/{missing}", {"scope": "team-a"}),
        (f"/api/executions/{world.execution}", {"scope": "team-b"}),  # another tenant's
    ]:
        response = api.get(path, params=params)
        assert response.status_code == 404, path
        assert response.json()["error"] == "NotFoundError"
    response = api.get("/api/nothing-here")
    assert (response.status_code, response.json()["error"]) == (404, "NotFound")


def test_nothing_writes(api: Api) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert api.request(method, "/api/runs").status_code == 405
        assert api.request(method, "/api/executions?scope=team-a").status_code == 405


def test_a_server_with_a_token_refuses_every_request_without_it(
    seeded: tuple[str, World],
) -> None:
    guarded = Api(seeded[0], token="s3cret-token")
    try:
        for path in ("/api/runs", "/api/scopes", "/api/nothing-here"):
            refused = guarded.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"] == "Unauthorized"
        wrong = [
            {"headers": {"Authorization": "Bearer s3cret"}},
            {"headers": {"Authorization": "Basic s3cret-token"}},
            {"params": {"token": "s3cret-tokeñ"}},
            {"headers": {"Cookie": "agentstore_token=s3cret-token"}},  # the cookie is no token
        ]
        for kwargs in wrong:
            assert guarded.get("/api/runs", **kwargs).status_code == 401, kwargs
        assert guarded.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"}).is_success
        assert not guarded.client.cookies
        shown = guarded.get("/api/runs", params={"token": "s3cret-token"})
        assert shown.is_success and "HttpOnly" in shown.headers["set-cookie"]
        assert "s3cret" not in shown.headers["set-cookie"]
        assert guarded.get("/api/scopes").is_success  # the browser's cookie stands for it
    finally:
        guarded.close()


def test_a_database_gone_is_503_and_a_fault_is_a_bare_500(
    seeded: tuple[str, World], dialect: str, tmp_path: Any
) -> None:
    if dialect == "sqlite":
        gone = f"sqlite:///{tmp_path / 'no-such-directory' / 'agentstore.db'}"
    else:
        gone = make_url(seeded[0]).set(database="no_such_database_here")
        gone = gone.render_as_string(hide_password=False)
    unreachable = Api(gone)
    try:
        for path in ("/api/runs", "/api/scopes", "/api/executions?scope=team-a"):
            response = unreachable.get(path)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "StoreUnavailableError"
        unreachable.app.state.store = None  # a bug in a handler, say
        response = unreachable.get("/api/runs")
        assert response.status_code == 500
        assert response.json() == {
            "error": "InternalServerError",
            "message": "internal error (see the server's log)",
        }
    finally:
        unreachable.app.state.store = unreachable.store
        unreachable.close()
