"""Without OpenTelemetry installed (simulated in a fresh interpreter: an import hook
refuses it), everything works, nothing of it is imported, and it is looked for once.
With the API but no SDK (its no-op tracer), everything works too."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys

    tried = []

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "opentelemetry":
                tried.append(name)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())

    from agentstore import AgentStore, AsyncAgentStore, TaskDraft
    from agentstore.errors import AgentStoreError
    from agentstore.telemetry import SILENT, observe_pending_tasks
    from agentstore.worker import Worker

    url = sys.argv[1]
    with AgentStore.open(url) as store:
        assert store.telemetry is SILENT
        run = store.runs.create("goal", "/repo", "running")
        store.tasks.replace_pending(run.id, [TaskDraft("a", "o"), TaskDraft("b", "o")])
        worker = Worker(store, lambda context: "done", run_id=run.id)
        assert worker.run(until_idle=True).completed == 2
        with store.executions.recording("scope", "code") as rec:
            rec.tool("a.tool", None, lambda args: 1)
        assert rec.faults == 0
        with store.transaction() as tx:
            tx.runs.get(run.id)
        try:
            observe_pending_tasks(store)
        except AgentStoreError as exc:
            assert "agentstore[otel]" in str(exc)
        else:
            raise AssertionError("observe_pending_tasks without OpenTelemetry")

    async def main():
        async with AsyncAgentStore.open(url) as store:
            assert store.telemetry is SILENT
            await store.runs.get(run.id)
            async with store.executions.recording("scope", "code") as rec:
                await rec.tool("a.tool", None, lambda args: 1)

    asyncio.run(main())
    loaded = [name for name, module in sys.modules.items()
              if name.split(".")[0] == "opentelemetry" and module is not None]
    print(json.dumps({"tried": tried, "loaded": loaded}))
    """
)


def test_without_opentelemetry_nothing_of_it_is_imported(db_url: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", PROGRAM, db_url], capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout.splitlines()[-1])
    assert seen == {"tried": ["opentelemetry"], "loaded": []}


NO_SDK = textwrap.dedent(
    """
    import asyncio, sys

    from agentstore import AgentStore, AsyncAgentStore, TaskDraft
    from agentstore.worker import Worker

    url = sys.argv[1]
    with AgentStore.open(url) as store:
        assert store.telemetry.traces_calls
        run = store.runs.create("goal", "/repo", "running")
        store.tasks.replace_pending(run.id, [TaskDraft("a", "o")])
        assert Worker(store, lambda context: "done", run_id=run.id).run(until_idle=True).completed
        with store.executions.recording("scope", "code") as rec:
            rec.tool("a.tool", None, lambda args: 1)
        with store.transaction() as tx:
            tx.runs.get(run.id)

    async def main():
        async with AsyncAgentStore.open(url) as store:
            async with store.executions.recording("scope", "code") as rec:
                await rec.tool("a.tool", None, lambda args: 1)
            return rec.faults

    assert asyncio.run(main()) == 0
    assert "opentelemetry.sdk" not in sys.modules
    """
)


def test_with_the_api_and_no_sdk_everything_works(db_url: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", NO_SDK, db_url], capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""  # nothing logged either (a context detached twice would be)
