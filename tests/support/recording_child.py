"""A host process recording one execution that never ends, for the durability tests:
``python -m tests.support.recording_child URL FACE MODE``. It prints ``execution ID``,
then records three tool calls and prints ``recorded``; with MODE ``flush`` it then calls
``rec.flush()``, records two more calls and prints ``more``. Then it waits to be killed."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta

from agentstore import AgentStore, AsyncAgentStore

#: Long enough that only an explicit flush saves (MODE flush); short otherwise.
FLUSH_AFTER = {"flush": timedelta(hours=1), "background": timedelta(milliseconds=50)}


def say(line: str) -> None:
    print(line, flush=True)


def record_sync(url: str, mode: str) -> None:
    with (
        AgentStore.open(url) as store,
        store.executions.recording("s", "code", flush_after=FLUSH_AFTER[mode]) as rec,
    ):
        say(f"execution {rec.execution_id}")
        for n in range(3):
            rec.tool(f"before.{n}", {"n": n}, lambda args: args["n"])
        say("recorded")
        if mode == "flush":
            rec.flush()
            for n in range(2):
                rec.tool(f"after.{n}", {"n": n}, lambda args: args["n"])
            say("more")
        time.sleep(3600)


async def record_async(url: str, mode: str) -> None:
    async with (
        AsyncAgentStore.open(url) as store,
        store.executions.recording("s", "code", flush_after=FLUSH_AFTER[mode]) as rec,
    ):
        say(f"execution {rec.execution_id}")
        for n in range(3):
            await rec.tool(f"before.{n}", {"n": n}, lambda args: args["n"])
        say("recorded")
        if mode == "flush":
            await rec.flush()
            for n in range(2):
                await rec.tool(f"after.{n}", {"n": n}, lambda args: args["n"])
            say("more")
        await asyncio.sleep(3600)


if __name__ == "__main__":
    url, face, mode = sys.argv[1:4]
    if face == "sync":
        record_sync(url, mode)
    else:
        asyncio.run(record_async(url, mode))
