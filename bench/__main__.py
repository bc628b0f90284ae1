"""``python -m bench [claim append listing snapshot telemetry …] [--quick] [--write]``."""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import harness, machine

BENCHMARKS = (
    "claim",
    "async_claim",
    "wakeup",
    "peers",
    "embedded",
    "recorder",
    "append",
    "listing",
    "web",
    "snapshot",
    "retention",
    "telemetry",
)
RESULTS = Path(__file__).with_name("RESULTS.md")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("benchmarks", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--dialect", choices=harness.DIALECTS, action="append")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to use (else one is started)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args()
    names = args.benchmarks or list(BENCHMARKS)
    if unknown := set(names) - set(BENCHMARKS):
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    dialects = tuple(args.dialect or harness.DIALECTS)

    started = time.monotonic()
    with harness.databases(args.postgres_url, dialects) as databases:
        facts = machine.facts(databases.postgres_admin_url)
        for name, value in facts:
            print(f"{name:<28} {value}")
        context = harness.Context(
            harness.Report(), databases, dialects, quick=args.quick, repeat=args.repeat
        )
        for name in names:
            print(f"\n== {name}", flush=True)
            importlib.import_module(f"bench.{name}").run(context)
    minutes = (time.monotonic() - started) / 60
    print(f"\n{len(context.report.rows)} figures in {minutes:.1f} min")
    if args.write:
        RESULTS.write_text(results_markdown(facts, context.report, names, args, minutes))
        print(f"wrote {RESULTS}")


def results_markdown(
    facts: list[tuple[str, str]],
    report: harness.Report,
    names: list[str],
    args: argparse.Namespace,
    minutes: float,
) -> str:
    command = "python -m bench " + " ".join(names)
    if args.quick:
        command += " --quick"
    return "\n\n".join(
        [
            "# Benchmark results",
            f"`{command} --repeat {args.repeat} --write`, "
            f"{datetime.now(UTC):%Y-%m-%d}, {minutes:.0f} minutes. Figures are medians "
            f"of {args.repeat} measurements; ratio is the library's speed relative to the "
            "raw driver doing the same work in the same run (above 1: the library is faster).",
            "## Machine",
            machine.markdown(facts),
            "## Figures",
            harness.markdown(report.rows),
            "",
        ]
    )


if __name__ == "__main__":
    main()
