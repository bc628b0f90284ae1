"""The command on both dialects: every command, --json parsed, and
one-line errors."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest

from agentstore import AgentStore, SweepCounts, TaskDraft
from tests.cli.conftest import REPO, Cli


@pytest.fixture
def seeded(db_url: str) -> dict[str, str]:
    with AgentStore.open(db_url) as store:
        run = store.runs.create("cli goal", "/repo", "running")
        store.tasks.replace_pending(run.id, [TaskDraft("first", "o"), TaskDraft("second", "o")])
        task = store.tasks.claim_next("w1", run_id=run.id, lease=timedelta(minutes=5))[0]
        store.tasks.complete(task.id, "done", attempt=1)
        store.agents.save(run.id, "strategy", turns=3)
        store.approvals.add(run.id, "checker", "approved", "fine")
        with store.executions.recording("team", "print('x')", trigger="cli") as rec:
            rec.tool("github.issues.list", {}, lambda _: [1])
            question = rec.ask("form", purpose="token")
            assert question is not None
            store.executions.resolve_interaction("team", question.id, {"ok": 1}, {"secret": "s"})
            rec.result(1)
        store.executions.create("team", "other code", trigger="http")
    return {"url": db_url, "run": str(run.id), "execution": str(rec.execution_id)}


def test_db_upgrade_current_history_check_downgrade(cli: Cli, empty_db_url: str) -> None:
    url = ["--url", empty_db_url]
    assert cli(*url, "db", "check").code == 1  # not migrated yet
    assert cli(*url, "db", "upgrade").code == 0
    current = cli(*url, "--json", "db", "current")
    assert current.code == 0 and current.json()["current"] == current.json()["head"]
    assert "0002" in cli(*url, "db", "history").out
    check = cli(*url, "db", "check")
    assert check.code == 0, check.err
    assert cli(*url, "db", "downgrade", "0001").code == 0
    behind = cli(*url, "db", "check")
    assert behind.code == 1 and "agentstore db upgrade" in behind.err
    assert len(behind.err.strip().splitlines()) == 1


def test_db_check_wait_gives_up_on_an_unreachable_database(cli: Cli, dialect: str) -> None:
    url = (
        "sqlite:////nonexistent-dir/agentstore.db"
        if dialect == "sqlite"
        else "postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    result = cli("--url", url, "db", "check", "--wait", "1")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_runs_list_and_show(cli: Cli, seeded: dict[str, str]) -> None:
    listed = cli("--url", seeded["url"], "--json", "runs", "list")
    assert [run["id"] for run in listed.json()["items"]] == [seeded["run"]]
    shown = cli("--url", seeded["url"], "--json", "runs", "show", seeded["run"])
    snapshot = shown.json()
    assert snapshot["run"]["goal"] == "cli goal"
    assert len(snapshot["tasks"]["completed"]) == 1 and len(snapshot["tasks"]["pending"]) == 1
    assert set(snapshot["agents"]) == {"strategy"}
    assert snapshot["approvals"][0]["verdict"] == "approved"
    table = cli("--url", seeded["url"], "runs", "show", seeded["run"])
    assert "completed 1" in table.out and "strategy" in table.out


def test_tasks_list_by_status(cli: Cli, seeded: dict[str, str]) -> None:
    pending = cli(
        "--url", seeded["url"], "--json", "tasks", "list", seeded["run"], "--status", "pending"
    )
    assert [t["title"] for t in pending.json()] == ["second"]
    table = cli("--url", seeded["url"], "tasks", "list", seeded["run"])
    assert table.out.splitlines()[0].split()[:3] == ["#", "ID", "STATUS"]


def test_tasks_waiting_listed_shown_and_answered(cli: Cli, seeded: dict[str, str]) -> None:
    url = seeded["url"]
    with AgentStore.open(url) as store:
        [held] = store.tasks.claim_next("w1", run_id=seeded["run"])
        store.tasks.wait(held.id, {"approve": "ship it?"}, attempt=held.attempt)
    task = str(held.id)
    waiting = cli("--url", url, "--json", "tasks", "list", seeded["run"], "--status", "waiting")
    assert [(t["id"], t["question"]) for t in waiting.json()] == [(task, {"approve": "ship it?"})]
    shown = cli("--url", url, "runs", "show", seeded["run"])
    assert "waiting 1" in shown.out and "ship it?" in shown.out
    answered = cli("--url", url, "--json", "tasks", "answer", task, '{"approved": true}')
    assert answered.code == 0, answered.err
    assert (answered.json()["status"], answered.json()["answer"]) == ("pending", {"approved": True})
    attempt = str(held.attempt)
    again = cli("--url", url, "tasks", "answer", task, '{"approved": true}', "--attempt", attempt)
    assert again.code == 0 and "pending" in again.out  # the same answer again: a retry
    other = cli("--url", url, "tasks", "answer", task, '{"approved": false}')
    assert other.code == 1 and "answered already" in other.err
    assert len(other.err.strip().splitlines()) == 1
    not_json = cli("--url", url, "tasks", "answer", task, "{approved}")
    assert not_json.code == 2 and "not JSON" in not_json.err


def next_line(stream: IO[str], within: float = 30.0) -> str:
    """The next line a child process writes, or "" if none comes ``within`` seconds."""
    ready, _, _ = select.select([stream], [], [], within)
    return stream.readline() if ready else ""


def test_events_tail_and_follow(cli: Cli, seeded: dict[str, str]) -> None:
    """The follower polls SQLite; on PostgreSQL it polls once an hour here, so only the
    journal's NOTIFY can bring it the new event. Each line reaches the pipe at once."""
    interval = "3600" if seeded["url"].startswith("postgresql") else "0.2"
    tail = cli("--url", seeded["url"], "--json", "events", "tail", seeded["run"])
    assert '"run_created"' in tail.out
    # A test run started in the background (``cmd &``) ignores SIGINT, and a child
    # inherits that; a handler of Python's is reset to the default in the child instead.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentstore",
                "--url",
                seeded["url"],
                "events",
                "tail",
                seeded["run"],
                "--follow",
                "--interval",
                interval,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert follower.stdout is not None
    # The journal as it was (flushed at once), so the follower has read it, and listens
    # on PostgreSQL.
    assert "run_created" in next_line(follower.stdout)
    with AgentStore.open(seeded["url"]) as store:
        store.events.add(uuid.UUID(seeded["run"]), "test", "followed", "live event")
    while (line := next_line(follower.stdout)) and "live event" not in line:
        pass  # the rest of the journal as it was
    assert "test/followed: live event" in line
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err


def test_executions_list_show_stats_sweep(cli: Cli, seeded: dict[str, str]) -> None:
    url = ["--url", seeded["url"], "--json"]
    listed = cli(*url, "executions", "list", "--scope", "team", "--tool", "github.*")
    assert [e["id"] for e in listed.json()["items"]] == [seeded["execution"]]
    by_trigger = cli(
        *url,
        "executions",
        "list",
        "--scope",
        "team",
        "--trigger",
        "http",
        "--since",
        "1h",
        "--sort",
        "duration:desc",
        "--limit",
        "5",
    )
    assert [e["code"] for e in by_trigger.json()["items"]] == ["other code"]
    shown = cli(*url, "executions", "show", seeded["execution"], "--scope", "team")
    detail = shown.json()
    assert detail["tool_calls"][0]["tool_path"] == "github.issues.list"
    assert detail["interactions"][0]["response"] == {"ok": 1}
    assert "secret" not in shown.out  # never the private response
    stats = cli(*url, "executions", "stats", "--scope", "team")
    assert stats.json()["filtered"] == 2 and stats.json()["with_interaction"] == 1
    chart = cli("--url", seeded["url"], "executions", "stats", "--scope", "team")
    assert "█" in chart.out and "buckets of" in chart.out
    dry = cli(*url, "executions", "sweep", "--older-than", "0s", "--dry-run")
    assert dry.json() == {"dry_run": True, "executions": 2}
    refused = cli(*url, "executions", "sweep", "--older-than", "30s", "--scope", "team")
    assert refused.code != 0 and "--force" in refused.err
    assert len(refused.err.strip().splitlines()) == 1, refused.err
    swept = cli(*url, "executions", "sweep", "--older-than", "0s", "--scope", "team", "--force")
    assert swept.json() == {"dry_run": False, "executions": 2}


def test_executions_waiting_lists_the_questions_for_a_person(cli: Cli, db_url: str) -> None:
    with AgentStore.open(db_url) as store:
        for scope in ("team", "ops"):
            execution = store.executions.create(scope, f"{scope} job")
            store.executions.request_interaction(
                scope,
                execution.id,
                "approve",
                purpose=f"{scope} deploy?",
                expires_in=timedelta(hours=1),
                on_expiry="fail",
            )
        late = store.executions.create("team", "late job")
        store.executions.request_interaction("team", late.id, "form", expires_in=timedelta(0))
    url = ["--url", db_url]
    every = cli(*url, "--json", "executions", "waiting")
    assert every.code == 0, every.err
    purposes = [item["interaction"]["purpose"] for item in every.json()["items"]]
    assert purposes == ["team deploy?", "ops deploy?"]
    assert every.json()["items"][0]["execution"]["code"] == "team job"
    first = cli(*url, "--json", "executions", "waiting", "--limit", "1")
    cursor = first.json()["next_cursor"]
    second = cli(*url, "--json", "executions", "waiting", "--limit", "1", "--cursor", cursor)
    assert [item["interaction"]["purpose"] for item in second.json()["items"]] == ["ops deploy?"]
    text = cli(*url, "executions", "waiting", "--scope", "ops")
    assert text.code == 0, text.err
    [header, row] = text.out.strip().splitlines()
    columns = "ASKED SCOPE EXECUTION KIND PURPOSE DEADLINE THEN CODE"
    assert header.split() == columns.split()
    assert "ops deploy?" in row and "fail" in row and "ops job" in row
    paged = cli(*url, "executions", "waiting", "--limit", "1")
    assert "next page: --cursor " in paged.out


def test_runs_sweep(cli: Cli, seeded: dict[str, str]) -> None:
    url = ["--url", seeded["url"], "--json"]
    with AgentStore.open(seeded["url"]) as store:
        ended = store.runs.create("done", "/repo", "completed")
        store.events.add(ended.id, "w", "note", "n")
    dry = cli(*url, "runs", "sweep", "--older-than", "0s", "--dry-run")
    assert dry.json() == {"dry_run": True, "runs": 1}
    refused = cli(*url, "runs", "sweep", "--older-than", "59s")
    assert refused.code != 0 and "--force" in refused.err
    live = cli(*url, "runs", "sweep", "--older-than", "1d", "--status", "running")
    assert live.code != 0 and "ended" in live.err
    swept = cli(*url, "runs", "sweep", "--older-than", "0s", "--force")
    assert swept.code == 0, swept.err
    assert swept.json()["runs"] == 1 and swept.json()["events"] >= 1
    listed = cli(*url, "runs", "list")
    assert [r["id"] for r in listed.json()["items"]] == [seeded["run"]]
    text = cli("--url", seeded["url"], "runs", "sweep", "--older-than", "30d")
    assert text.out.strip() == "deleted " + ", ".join(
        f"0 {name}" for name in SweepCounts.__dataclass_fields__
    )


def test_events_and_checkpoints_prune(cli: Cli, seeded: dict[str, str]) -> None:
    url = ["--url", seeded["url"], "--json"]
    with AgentStore.open(seeded["url"]) as store:
        before = len(store.events.list(seeded["run"], limit=1000))
        for n in range(3):
            store.events.add(seeded["run"], "w", "note", f"n{n}")
            store.checkpoints.add(seeded["run"], "running", {"n": n})
    run = ["--run", seeded["run"]]
    dry = cli(*url, "events", "prune", *run, "--keep-latest", "1", "--dry-run")
    assert dry.json() == {"dry_run": True, "events": before + 2}
    nothing_kept = cli(*url, "events", "prune", "--keep-latest", "0")
    assert nothing_kept.code != 0 and "--force" in nothing_kept.err
    too_young = cli(*url, "events", "prune", "--older-than", "10s")
    assert too_young.code != 0 and "--force" in too_young.err
    no_rule = cli(*url, "checkpoints", "prune")
    assert no_rule.code != 0 and "--keep-latest" in no_rule.err
    pruned = cli(*url, "events", "prune", *run, "--keep-latest", "1", "--older-than", "1d")
    assert pruned.json() == {"dry_run": False, "events": 0}  # all younger than a day
    pruned = cli(*url, "events", "prune", *run, "--keep-latest", "1")
    assert pruned.json() == {"dry_run": False, "events": before + 2}
    text = cli("--url", seeded["url"], "checkpoints", "prune", "--keep-latest", "2")
    assert text.out.strip() == "deleted 1 checkpoints"
    with AgentStore.open(seeded["url"]) as store:
        assert [e.message for e in store.events.list(seeded["run"])] == ["n2"]
        assert [c.payload for c in store.checkpoints.list(seeded["run"])] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "show", "not-a-uuid"],
        ["executions", "list"],
        ["executions", "list", "--scope", "s", "--since", "soon"],
        ["executions", "list", "--scope", "s", "--sort", "size"],
        ["executions", "list", "--scope", "s", "--cursor", "garbage"],
        ["executions", "list", "--scope", "s", "--limit", "500"],
        ["executions", "list", "--scope", "s", "--status", "done"],
        ["executions", "waiting", "--cursor", "garbage"],
        ["executions", "waiting", "--limit", "0"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_give_one_line_errors(cli: Cli, db_url: str, args: list[str]) -> None:
    result = cli("--url", db_url, *args)
    assert result.code != 0
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err


def test_an_unknown_run_is_a_one_line_error(cli: Cli, db_url: str) -> None:
    result = cli("--url", db_url, "runs", "show", "00000000-0000-0000-0000-000000000000")
    assert result.code == 1 and "not found" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_an_unmigrated_database_names_the_fix(cli: Cli, empty_db_url: str) -> None:
    for args in (["runs", "list"], ["executions", "stats", "--scope", "s"]):
        result = cli("--url", empty_db_url, *args)
        assert result.code == 1
        assert result.err.strip().count("\n") == 0
        assert "not migrated" in result.err and "agentstore db upgrade --url" in result.err


def test_python_dash_m_is_the_same_command(cli: Cli) -> None:
    assert "usage: agentstore" in cli("--help").out


def test_a_reader_that_leaves_early_stops_the_command_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'piped.db'}"
    with AgentStore.open(url) as store:
        store.migrate()
        for n in range(400):
            store.runs.create(f"goal {n} " + "x" * 200, "/repo")
    piped = subprocess.run(
        f"{sys.executable} -m agentstore --url {url} runs list --json --limit 400 | head -c 100",
        shell=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert len(piped.stdout) == 100
    assert piped.stderr == ""
