"""The wheel carries the migrations and the dashboard's templates and static files:
installed in a fresh virtual environment outside the repository, the command runs the
demo and migrates PostgreSQL, and the asyncio face (the asyncio extra) migrates and
writes."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.cli.conftest import REPO

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_an_installed_wheel_runs_the_demo_and_migrates_postgres(
    tmp_path: Path, postgresql_databases: object
) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, REPO, cwd=tmp_path)
    [wheel] = dist.glob("agentstore-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    dashboard = {"templates/base.html", "templates/run.html", "static/dashboard.css"}
    assert {f"agentstore/web/{name}" for name in dashboard} <= shipped  # no build step
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    run(
        bin_dir / "pip",
        "install",
        "--quiet",
        f"agentstore[postgres,asyncio] @ {wheel.as_uri()}",
        cwd=tmp_path,
    )

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    demo = run(bin_dir / "agentstore", "demo", "--workers", "2", "--tasks", "4", cwd=workdir)
    assert "every task completed once: yes (4/4)" in demo.stdout
    assert (workdir / "agentstore.db").exists()  # the embedded default, in the cwd

    url = postgresql_databases.empty()  # type: ignore[attr-defined]
    run(bin_dir / "agentstore", "db", "upgrade", "--url", url, cwd=workdir)
    check = run(bin_dir / "agentstore", "--url", url, "db", "check", cwd=workdir)
    assert "at head" in check.stdout
    migrate = "import agentstore, sys; agentstore.migrate(sys.argv[1])"
    run(bin_dir / "python", "-c", migrate, f"sqlite:///{workdir / 'api.db'}", cwd=workdir)

    asynchronous = (
        "import asyncio, sys\n"
        "from agentstore import AsyncAgentStore\n"
        "async def main():\n"
        "    async with AsyncAgentStore.open(sys.argv[1]) as store:\n"
        "        await store.migrate()\n"
        "        print((await store.runs.create('from the wheel', '/r')).status)\n"
        "asyncio.run(main())\n"
    )
    for target in (f"sqlite:///{workdir / 'async.db'}", postgresql_databases.empty()):  # type: ignore[attr-defined]
        created = run(bin_dir / "python", "-c", asynchronous, target, cwd=workdir)
        assert created.stdout.strip() == "planning"
