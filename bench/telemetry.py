"""What OpenTelemetry costs a claim: the claim benchmark's drain (one process claiming
and completing one task at a time through ``AgentStore``: two calls, two spans a task)
in a fresh interpreter per drain, in each of these modes:

- ``absent``: OpenTelemetry's import refused (as if the extra were not installed);
- ``no-op``: the API installed, no SDK (the API's no-op tracer: what a library user who
  installed the extra but configured nothing pays);
- ``sdk``: the SDK recording every span, to an in-memory exporter;
- ``before``: with ``$AGENTSTORE_BENCH_BASELINE_SRC`` set to the ``src`` directory of a
  checkout from before telemetry, that code, OpenTelemetry absent: the cost of the
  change itself, where the target is to stay within 2%.

The modes alternate drain by drain, in an order shuffled each round, so that drift on a
noisy machine and a drain's place in the round fall on all; each figure is the median
tasks/s, with the client's CPU time per task in the notes (median, and least: the drain
least disturbed by other load), and the runner's own time per call, measured apart in
each drain's interpreter with the database left out (a tight loop of calls around an
operation that does nothing, against the operation called directly).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import agentstore
from agentstore import AgentStore, TaskDraft
from bench.harness import Context, Row, median

ROOT = Path(__file__).resolve().parents[1]
BASELINE_ENV_VAR = "AGENTSTORE_BENCH_BASELINE_SRC"

DRAIN = textwrap.dedent(
    """
    import importlib.abc, json, resource, sys, time

    mode, url, run_id = sys.argv[1:4]

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    if mode in ("absent", "before"):
        sys.meta_path.insert(0, Absent())
    elif mode == "sdk":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

    from agentstore import AgentStore
    from bench.claim import Drain, library_drain

    with AgentStore.open(url) as store:
        traced = getattr(getattr(store, "telemetry", None), "traces_calls", False)
    began = []

    def ready():
        began.append((time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)))

    claimed = library_drain(Drain(url, run_id, 1, True), "w", ready)
    ended, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    (started, before), = began
    cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)

    def per_call(call):
        # nanoseconds a call of call() takes, the least of five rounds
        rounds = []
        for _ in range(5):
            began = time.perf_counter_ns()
            for _ in range(20_000):
                call()
            rounds.append((time.perf_counter_ns() - began) / 20_000)
        return min(rounds)

    # The runner's own cost per call, the database left out: the call path around an
    # operation that does nothing, against that operation called directly.
    overhead = None
    if mode != "before":
        from agentstore.orchestrator import TaskRepository

        with AgentStore.open(url) as store:
            calls = store._calls
            calls._run = lambda *arguments: None
            arguments = (False, TaskRepository, TaskRepository.complete, (run_id, "done"),
                         {"attempt": 1})
            overhead = per_call(lambda: calls.run(*arguments)) - per_call(
                lambda: calls._run(*arguments))
    print(json.dumps({
        "seconds": ended - started,
        "cpu": cpu,
        "claimed": len(claimed),
        "traced": traced,
        "otel_loaded": any(m.split(".")[0] == "opentelemetry" for m in sys.modules),
        "overhead_ns": overhead,
    }))
    """
)

#: What each mode's drain must show of itself: (calls traced, OpenTelemetry imported).
EXPECTED = {
    "before": (False, False),
    "absent": (False, False),
    "no-op": (True, True),
    "sdk": (True, True),
}


def drain(mode: str, url: str, tasks: int) -> tuple[float, float, float | None]:
    """Plan ``tasks`` tasks, drain them in a fresh interpreter in ``mode``: tasks/s, CPU
    microseconds per task, and the runner's own nanoseconds per call (not for
    ``before``)."""
    with AgentStore.open(url, telemetry=False) as store:
        run = store.runs.create("benchmark", "/bench")
        store.tasks.replace_pending(run.id, [TaskDraft(f"t{i}", "bench") for i in range(tasks)])
    src = os.environ[BASELINE_ENV_VAR] if mode == "before" else str(_src())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
    ran = subprocess.run(
        [sys.executable, "-c", DRAIN, mode, url, str(run.id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if ran.returncode != 0:
        raise RuntimeError(f"the {mode} drain failed: {ran.stderr}")
    seen = json.loads(ran.stdout.splitlines()[-1])
    if seen["claimed"] != tasks or (seen["traced"], seen["otel_loaded"]) != EXPECTED[mode]:
        raise RuntimeError(f"the {mode} drain is not what it should be: {seen}")
    with AgentStore.open(url, telemetry=False) as store:
        store.runs.delete(run.id)
    return tasks / seen["seconds"], seen["cpu"] / tasks * 1e6, seen["overhead_ns"]


def _src() -> Path:
    return Path(agentstore.__file__).resolve().parents[1]


def run(context: Context) -> None:
    tasks = 200 if context.quick else 2000
    modes = ["absent", "no-op", "sdk"]
    if os.environ.get(BASELINE_ENV_VAR):
        modes.insert(0, "before")
    for dialect in context.dialects:
        url = context.databases.fresh(dialect, "telemetry")
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        cpus: dict[str, list[float]] = {mode: [] for mode in modes}
        overheads: dict[str, list[float]] = {mode: [] for mode in modes if mode != "before"}
        order = random.Random(20261124)
        for _ in range(context.repeat):
            for mode in order.sample(modes, len(modes)):
                per_second, per_task, overhead = drain(mode, url, tasks)
                rates[mode].append(per_second)
                cpus[mode].append(per_task)
                if overhead is not None:
                    overheads[mode].append(overhead)
        rate = {mode: median(values) for mode, values in rates.items()}
        cpu = {mode: median(values) for mode, values in cpus.items()}
        least = {mode: min(values) for mode, values in cpus.items()}
        runner = {mode: median(values) / 1000 for mode, values in overheads.items()}
        # The change itself against the code before it; what the API and the SDK add
        # against OpenTelemetry absent.
        pairs = [("absent", "before")] if "before" in modes else []
        pairs += [("no-op", "absent"), ("sdk", "absent")]
        for mode, base in pairs:
            within = base == "before"
            context.report.add(
                Row(
                    "telemetry",
                    f"{dialect}: OTel {mode} vs {base}, claim+complete W=1 batch=1",
                    "tasks/s",
                    rate[mode],
                    rate[base],
                    target=">= 0.98x" if within else "",
                    met=None if context.quick or not within else rate[mode] / rate[base] >= 0.98,
                    notes=f"client CPU per task (two calls), median: {cpu[mode]:.0f} µs against "
                    f"{cpu[base]:.0f} µs ({cpu[mode] / cpu[base] - 1:+.1%}), least: "
                    f"{least[mode]:.0f} against {least[base]:.0f} µs "
                    f"({least[mode] / least[base] - 1:+.1%}); the runner's own "
                    f"time per call: {runner[mode]:.2f} µs ({_share(runner[mode], rate[mode])} "
                    f"of a call); raw column: {base}",
                )
            )


def _share(call_microseconds: float, tasks_per_second: float) -> str:
    """``call_microseconds`` as a share of one call of a drain at ``tasks_per_second``
    (two calls a task)."""
    return f"{call_microseconds / (1e6 / tasks_per_second / 2):.2%}"
