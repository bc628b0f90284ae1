"""The worker: claims tasks, runs a handler on each, keeps their leases, and writes how
each attempt ended.

One runtime for both faces. Its loop is asyncio: with an ``AsyncAgentStore`` it awaits
the store; with an ``AgentStore`` each store call runs in a small thread pool of its own
(so that a busy handler never delays a heartbeat). Async handlers run as tasks, sync
handlers in a thread pool of ``concurrency`` threads. A thread runs a call or a handler in
a copy of the context of the task that handed it over (as ``asyncio.to_thread`` does), so
that the spans of a worked task (``agentstore.telemetry``) are its span's children
whichever face and handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import random
import signal
import socket
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from agentstore import validation
from agentstore.async_store import AsyncAgentStore
from agentstore.backends.listen import TASKS_CHANNEL, channel
from agentstore.errors import (
    AgentStoreError,
    StaleClaimError,
    StoreUnavailableError,
    ValidationError,
)
from agentstore.models import Task
from agentstore.orchestrator import Backoff, BatchHandoff, Completion, TaskRecord
from agentstore.statuses import TaskStatus
from agentstore.store import AgentStore
from agentstore.validation import Id
from agentstore.worker.completions import GroupCommit
from agentstore.worker.outcomes import Block, Retry, TaskContext, Wait

log = logging.getLogger("agentstore.worker")

Handler = Callable[[TaskContext], Any]
#: Why a handler's work was stopped before it returned.
LOST, CANCELLED, HANDED_BACK = "lost", "cancelled", "handed back"
#: How many started attempts a worker remembers: far more than a reply can lag behind.
STARTED_REMEMBERED = 10_000
ERROR_LIMIT = 4000  # characters of a failure's traceback kept as the attempt's summary
FIRST_POLL = 0.01  # seconds: the first idle poll after work; it doubles to poll_interval
LISTEN_TIMEOUT = 60.0  # seconds a listener waits before it waits again
#: Seconds between tries of a call the database could not answer: doubling, with jitter.
RETRY_FIRST, RETRY_MOST = 0.05, 5.0
#: The writes after which a task may be claimable (or due sooner) than before.
WAKING_WRITES = frozenset(
    {
        "replace_pending",
        "requeue_in_progress",
        "requeue_expired",
        "release",
        "fail",
        "resume",
        "answer",
    }
)


@dataclass
class WorkerCounters:
    """What a worker has done since it started."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0  # attempts that raised (or asked for a retry)
    retried: int = 0  # of those, tasks that will be tried again
    blocked: int = 0
    waiting: int = 0  # attempts that asked a person (the task waits for the answer)
    lost_leases: int = 0
    cancelled: int = 0
    handed_back: int = 0

    def snapshot(self) -> WorkerCounters:
        return replace(self)


class Worker:
    """Works tasks of one run (``run_id``) or of every run with ``handler``.

    ``handler(context)`` gets a ``TaskContext`` (the task, and whether to stop). Returning
    completes the task: a string is its summary, any other value (JSON) its attempt's
    result. Raising ``Retry`` or any other exception fails the attempt (tried again after
    ``backoff``, the task's own or the store's policy; blocked once ``max_attempts`` is
    used); raising ``Block`` blocks the task; raising ``Wait(question)`` asks a person
    and frees the task's slot: the task waits, held by nobody, until someone answers
    (``store.tasks.answer``), and is then claimed again, with ``context.task.answer``
    (a wait does not use up ``max_attempts``). While it runs, its lease is extended about
    every third of ``lease``; a lost lease or a cancellation stops the work.

    ``run()`` (or ``await run_async()``) works until ``stop()``, SIGTERM or SIGINT: then
    the worker stops claiming, lets running handlers finish within ``grace``, and hands
    the rest back (pending again, journalled). With ``until_idle`` it also returns once
    nothing is pending or held (a task waiting for an answer is neither).

    With nothing to claim it sleeps until the next task is due, polling at most every
    ``poll_interval`` (sooner just after work: the poll then backs off from 10 ms). It wakes
    at once when a plan, a retry, a requeue, a hand-back or an answer is committed: through
    its own store in this process, or, on PostgreSQL with ``listen``, anywhere (NOTIFY, on
    a connection of its own; not through a transaction pooler,
    ``?transaction_pooling=true``).
    A cancellation NOTIFY makes it heartbeat the task at once.

    A call the database does not answer never stops the worker: it tries again with
    backoff (an attempt's ending for as long as a lease; an ending made again after it
    committed returns the task). When a claim's reply was lost and the claim may have
    committed, it re-finds the tasks it holds by its ``name`` (``tasks.held_by``) and
    works them: a worker's name must be unique among live workers.
    """

    def __init__(
        self,
        store: AgentStore | AsyncAgentStore,
        handler: Handler,
        *,
        run_id: Id | None = None,
        concurrency: int = 1,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 1,
        name: str | None = None,
        backoff: Backoff | None = None,
        poll_interval: timedelta = timedelta(seconds=1),
        grace: timedelta = timedelta(seconds=30),
        listen: bool = True,
    ) -> None:
        if not isinstance(store, (AgentStore, AsyncAgentStore)):
            raise ValidationError(f"Worker takes an AgentStore or AsyncAgentStore, not {store!r}")
        if not callable(handler):
            raise ValidationError(f"the handler must be callable, got {handler!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ValidationError(f"backoff must be a Backoff, got {backoff!r}")
        self.store = store
        self.handler = handler
        self.run_id = validation.optional_identifier(run_id, "run_id")
        self.concurrency = validation.positive_int(concurrency, "concurrency", maximum=10_000)
        self.lease = validation.duration(lease, "lease")
        self.batch = validation.positive_int(batch, "batch", maximum=1000)
        if name is None:
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.name = name
        validation.text(self.name, Task.claimed_by)
        self.backoff = backoff
        self.poll_interval = validation.duration(poll_interval, "poll_interval").total_seconds()
        self.grace = validation.delay(grace, "grace").total_seconds()
        self.listen = validation.flag(listen, "listen")
        self._counters = WorkerCounters()
        self._telemetry = store.telemetry
        self._stopping: asyncio.Event | None = None
        self._slot_freed: asyncio.Event | None = None  # a running task ended, or stop
        self._stop_requested = False
        self._wake: asyncio.Event | None = None
        self._running: dict[asyncio.Task[None], _Work] = {}
        self._refind = False  # a claim's reply was lost: re-find what this worker holds
        # The attempts this worker started lately: a claim's late reply and a re-find may
        # both hand over the same attempt, which must run once.
        self._started: OrderedDict[tuple[uuid.UUID, int], None] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler_is_async = inspect.iscoroutinefunction(handler)
        self._store_threads: ThreadPoolExecutor | None = None
        self._handler_threads: ThreadPoolExecutor | None = None
        self._completions = GroupCommit(self._settle)

    @property
    def counters(self) -> WorkerCounters:
        return self._counters.snapshot()

    def run(self, *, until_idle: bool = False) -> WorkerCounters:
        """Work until stopped (see the class); the counters when it returns."""
        return asyncio.run(self.run_async(until_idle=until_idle))

    def stop(self) -> None:
        """Stop claiming and shut down gracefully (from any thread or a signal; before
        the worker starts, it then stops at once)."""
        self._stop_requested = True
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stop_now)

    def _stop_now(self) -> None:
        assert self._stopping is not None and self._slot_freed is not None
        self._stopping.set()
        self._slot_freed.set()  # the claim loop may be waiting for a slot

    async def run_async(self, *, until_idle: bool = False) -> WorkerCounters:
        """As ``run``, on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested:
            self._stopping.set()
        store_threads = handler_threads = None
        if isinstance(self.store, AgentStore):
            store_threads = ThreadPoolExecutor(self.concurrency + 1, "agentstore-store")
        if not self._handler_is_async:
            handler_threads = ThreadPoolExecutor(self.concurrency, "agentstore-handler")
        self._store_threads, self._handler_threads = store_threads, handler_threads
        signals = self._catch_signals()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        running = self._running = {}
        self._refind = False
        self._started.clear()
        unwatch = self.store.watch_writes(self._on_write)
        listening = asyncio.create_task(self._listen()) if self.listen else None
        log.info("worker %s started", self.name, extra={"worker": self.name})
        try:
            await self._claim_loop(running, until_idle)
        finally:
            unwatch()
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)
            await self._shut_down(running)
            for signum in signals:
                self._loop.remove_signal_handler(signum)
            for pool in (store_threads, handler_threads):
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
            log.info(
                "worker %s stopped: %s",
                self.name,
                self._counters,
                extra={"worker": self.name, **vars(self._counters)},
            )
        return self.counters

    # -- the loop -----------------------------------------------------------------------

    async def _claim_loop(self, running: dict[asyncio.Task[None], _Work], until_idle: bool) -> None:
        assert self._stopping is not None and self._wake is not None
        assert self._slot_freed is not None
        poll = self.poll_interval  # quick polls only after work, when more may follow
        failures = 0  # claims in a row the database did not answer
        while not self._stopping.is_set():
            self._wake.clear()  # a wake-up from now on is for this round's outcome
            free = self.concurrency - len(running)
            if free <= 0:
                # An event, not a wait on every running task (a task per round).
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                if self._refind:  # a claim may have committed unseen: take what it got
                    self._adopt(await self._call("held_by", self.name, run_id=self.run_id))
                claimed: list[TaskRecord] = await self._claim(
                    "claim_next",
                    self.name,
                    run_id=self.run_id,
                    lease=self.lease,
                    limit=min(self.batch, free),
                )
                self._start(claimed, running)
                due: datetime | None = None
                if not claimed:
                    due = await self._call("next_due", run_id=self.run_id)
            except StoreUnavailableError as exc:  # the database is away: try again later
                self._refind = self._refind or exc.maybe_committed
                failures += 1
                log.warning("worker %s: claim failed (%s in a row): %s", self.name, failures, exc)
                await self._until(self._stopping.wait(), asyncio.sleep(_backoff(failures)))
                continue
            failures = 0
            if claimed:
                poll = FIRST_POLL
                continue
            if until_idle and due is None and not running:
                return
            wait = poll
            if due is not None:
                wait = min(wait, max(0.0, (due - datetime.now(UTC)).total_seconds()))
            poll = min(poll * 2, self.poll_interval)
            # Also wake when a running task ends: its slot may take a task due meanwhile.
            await self._until(
                self._stopping.wait(),
                self._wake.wait(),
                asyncio.sleep(max(wait, FIRST_POLL)),
                *running,
            )

    def _start(self, claimed: list[TaskRecord], running: dict[asyncio.Task[None], _Work]) -> None:
        claimed = [task for task in claimed if (task.id, task.attempt) not in self._started]
        self._count("claimed", len(claimed))
        for task in claimed:
            self._started[task.id, task.attempt] = None
            if len(self._started) > STARTED_REMEMBERED:
                self._started.popitem(last=False)
            work = _Work(task)
            job = asyncio.create_task(self._work(work))
            running[job] = work
            job.add_done_callback(self._ended)

    def _adopt(self, held: list[TaskRecord]) -> None:
        """Start the tasks this worker holds but never started: a claim whose reply was
        lost committed them (a reply still on its way is not started twice: ``_start``)."""
        lost = [task for task in held if (task.id, task.attempt) not in self._started]
        if lost:
            log.warning("worker %s: re-found %s claimed tasks", self.name, len(lost))
        self._start(lost, self._running)
        self._refind = False

    def _ended(self, job: asyncio.Task[None]) -> None:
        assert self._slot_freed is not None
        self._running.pop(job, None)
        self._slot_freed.set()

    async def _work(self, work: _Work) -> None:
        """One claimed task, from its handler's start to the write of how it ended, in
        its span."""
        with self._telemetry.task(work.task, self.name):
            await self._work_on(work)

    async def _work_on(self, work: _Work) -> None:
        task = work.task
        self._beat_later(work)
        handler = self._start_handler(work.context)
        try:
            await work.settled(handler)
        finally:
            work.end_beats()
        if not handler.done():  # stopped first: lost lease, cancellation or hand-back
            work.context.cancel()
            handler.cancel()
            await self._settle_stopped(task, work.stopped.result())
            return
        try:
            value = handler.result()
        except Retry as retry:
            await self._fail(task, retry.reason, retry.after, retry)
        except Block as block:
            if await self._write("block", task, block.reason, block.signature):
                self._count("blocked", cause=block)
        except Wait as wait:
            await self._wait(task, wait.question)
        except Exception as exc:  # a handler's failure is the attempt's
            text = "".join(traceback.format_exception(exc))[-ERROR_LIMIT:]
            log.warning(
                "task %s attempt %s failed: %r",
                task.id,
                task.attempt,
                exc,
                extra=self._about(task),
            )
            await self._fail(task, text, None, exc)
        else:
            await self._complete(task, value)

    # -- leases: a timer per task, a heartbeat task only while one is under way -------

    def _beat_later(self, work: _Work) -> None:
        """Heartbeat the task in a third of the lease."""
        assert self._loop is not None
        delay = self.lease.total_seconds() / 3
        work.timer = self._loop.call_later(delay, self._beat_now, work)

    def _beat_now(self, work: _Work) -> None:
        """Heartbeat the task now (its timer is due, or a cancellation was notified)."""
        if work.ended or work.beating is not None:
            return
        if work.timer is not None:
            work.timer.cancel()
        work.beating = asyncio.create_task(self._beat(work))

    async def _beat(self, work: _Work) -> None:
        """Extend the lease; tell the work to stop when the lease is lost or the task
        cancelled."""
        task = work.task
        try:
            current = await self._call("heartbeat", task.id, task.attempt, self.lease)
        except StaleClaimError:
            work.stop(LOST)
            return
        except AgentStoreError as exc:  # the database is away: try again next time
            log.warning("heartbeat of task %s failed: %s", task.id, exc, extra=self._about(task))
        else:
            if current.cancel_requested:
                work.stop(CANCELLED)
                return
        finally:
            work.beating = None
        if not work.ended:
            self._beat_later(work)

    async def _settle_stopped(self, task: TaskRecord, why: str) -> None:
        if why == LOST:
            self._count("lost_leases")
            log.warning("task %s: lease lost; result discarded", task.id, extra=self._about(task))
        elif why == CANCELLED:
            if await self._write("abandon", task, "cancelled while running"):
                self._count("cancelled")
        elif await self._write("release", task, "the worker shut down"):
            self._count("handed_back")

    async def _fail(
        self, task: TaskRecord, error: str, after: timedelta | None, cause: BaseException
    ) -> None:
        if after is None and self.backoff is not None:
            after = self.backoff.delay(task.attempt - task.waits)  # waits are not failures
        self._count("failed", cause=cause)
        ended = await self._write("fail", task, error, retry_in=after)
        if ended is not None and ended.status is TaskStatus.PENDING:
            self._count("retried")
        elif ended is not None and ended.status is TaskStatus.BLOCKED:
            self._count("blocked")

    async def _wait(self, task: TaskRecord, question: Any) -> None:
        try:
            asked = await self._write("wait", task, question)
        except ValidationError as exc:  # a question that is not JSON
            await self._fail(task, f"the handler's question was refused: {exc}", None, exc)
            return
        if asked is not None and asked.status is TaskStatus.WAITING:
            self._count("waiting")
        elif asked is not None and asked.status is TaskStatus.ABANDONED:  # cancelled meanwhile
            self._count("cancelled")

    async def _complete(self, task: TaskRecord, value: Any) -> None:
        """Complete the task and, unless stopping, claim the next one in the same write,
        together with the tasks that finished meanwhile (``completions.GroupCommit``)."""
        summary = value if isinstance(value, str) and value.strip() else "completed"
        try:  # checked here, so that a bad result never refuses the others of its group
            result = validation.json_value(None if isinstance(value, str) else value, "result")
        except ValidationError as exc:  # a result that is not JSON
            await self._fail(task, f"the handler's result was refused: {exc}", None, exc)
            return
        assert self._stopping is not None
        try:
            if self._stopping.is_set():
                done = await self._write("complete", task, summary, result=result)
                if done is not None:
                    self._count("completed")
                return
            completed = await self._completions.complete(
                Completion(task.id, summary, task.attempt, result)
            )
        except StoreUnavailableError as exc:  # complete alone, retrying (a retry is safe)
            self._refind = self._refind or exc.maybe_committed  # its claim may have gone in
            done = await self._write("complete", task, summary, result=result, failed=exc)
            if done is not None:
                self._count("completed")
            return
        except AgentStoreError:  # the group was refused for one of its tasks: each alone
            done = await self._write("complete", task, summary, result=result)
            if done is not None:
                self._count("completed")
            return
        if completed:
            self._count("completed")
        else:
            self._count("lost_leases")
            log.warning("task %s: claim lost; result discarded", task.id, extra=self._about(task))

    async def _settle(self, completions: list[Completion]) -> BatchHandoff:
        """Write a group of completions and claim as many tasks (none once stopping):
        one alone in one statement where the database can (``complete_and_claim``)."""
        assert self._stopping is not None
        limit = 0 if self._stopping.is_set() else len(completions)
        if len(completions) == 1 and limit:
            [one] = completions
            handoff = await self._claim(
                "complete_and_claim",
                one.task_id,
                one.summary,
                attempt=one.attempt,
                worker=self.name,
                run_id=self.run_id,
                lease=self.lease,
                result=one.result,
            )
            if handoff.completed is not None:
                outcome = BatchHandoff([handoff.completed], [], handoff.claimed)
            else:  # its claim was lost
                outcome = BatchHandoff([], [uuid.UUID(str(one.task_id))], handoff.claimed)
        else:
            outcome = await self._claim(
                "complete_many",
                completions,
                worker=self.name,
                run_id=self.run_id,
                lease=self.lease,
                limit=limit,
            )
        self._start(outcome.claimed, self._running)
        return outcome

    async def _write(
        self,
        operation: str,
        task: TaskRecord,
        *args: Any,
        failed: StoreUnavailableError | None = None,
        **kwargs: Any,
    ) -> TaskRecord | None:
        """Write how the attempt at ``task`` ended (``store.tasks.<operation>``, fenced by
        its attempt); None if the claim was lost meanwhile (another worker's result
        stands) or the database stayed away (the lease will run out and the task be
        rescued). A call the database did not answer (``failed``: a first try made
        elsewhere) is made again, with backoff, for as long as a lease: an ending made
        again after it committed returns the task."""
        assert self._loop is not None
        give_up = self._loop.time() + self.lease.total_seconds()
        tries = 0
        while True:
            if failed is not None:
                tries += 1
                if not failed.retryable or self._loop.time() >= give_up:
                    log.error(
                        "task %s: could not %s: %s",
                        task.id,
                        operation,
                        failed,
                        extra=self._about(task),
                    )
                    return None
                log.warning("task %s: %s failed, retrying: %s", task.id, operation, failed)
                await asyncio.sleep(_backoff(tries))
            try:
                ended: TaskRecord = await self._call(
                    operation, task.id, *args, attempt=task.attempt, **kwargs
                )
                return ended
            except StaleClaimError:
                self._count("lost_leases")
                log.warning(
                    "task %s: claim lost before %s; result discarded",
                    task.id,
                    operation,
                    extra=self._about(task),
                )
                return None
            except StoreUnavailableError as exc:
                failed = exc
            except ValidationError:
                raise
            except AgentStoreError as exc:
                log.error(
                    "task %s: could not %s: %s", task.id, operation, exc, extra=self._about(task)
                )
                return None

    # -- wake-ups -----------------------------------------------------------------------

    def _on_write(self, operation: str) -> None:
        """A write through this worker's store committed (in any thread)."""
        if operation in WAKING_WRITES and self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _listen(self) -> None:
        """On PostgreSQL: wake on NOTIFY from any process; nothing elsewhere."""
        backend = self.store.backend
        channels = (channel(TASKS_CHANNEL, self.store.schema),)
        listener = backend.listener(self.store.engine.url, channels)
        if listener is None:
            return
        try:
            while True:
                try:
                    notifications = await listener.wait_async(LISTEN_TIMEOUT)
                except StoreUnavailableError as exc:  # polling goes on meanwhile
                    log.warning("worker %s: listening failed: %s", self.name, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                for _, payload in notifications:
                    self._on_notification(payload)
        finally:
            await listener.aclose()

    def _on_notification(self, payload: str) -> None:
        assert self._wake is not None
        kind, _, subject = payload.partition(" ")
        if kind == "cancel":
            for work in self._running.values():
                if str(work.task.id) == subject:
                    self._beat_now(work)
        elif self.run_id is None or kind == str(self.run_id):
            self._wake.set()

    # -- plumbing -----------------------------------------------------------------------

    def _about(self, task: TaskRecord) -> dict[str, Any]:
        """The fields of a log record about ``task`` (for structured log handlers)."""
        return {"worker": self.name, "task_id": str(task.id), "attempt": task.attempt}

    def _count(self, outcome: str, count: int = 1, cause: BaseException | None = None) -> None:
        """Count ``outcome`` (a ``WorkerCounters`` field), and tell the telemetry (its
        metrics; the span of the task, whose attempt ended so, by ``cause`` if one)."""
        setattr(self._counters, outcome, getattr(self._counters, outcome) + count)
        self._telemetry.counted(outcome, count, cause)

    async def _claim(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``_call``, for an operation that claims: its duration is the claim's."""
        started = time.perf_counter()
        result = await self._call(operation, *args, **kwargs)
        self._telemetry.claimed_in(operation, time.perf_counter() - started)
        return result

    async def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``store.tasks.<operation>(...)`` on either face."""
        method = getattr(self.store.tasks, operation)
        if self._store_threads is None:
            return await method(*args, **kwargs)
        assert self._loop is not None
        in_context = contextvars.copy_context().run
        return await self._loop.run_in_executor(
            self._store_threads, partial(in_context, method, *args, **kwargs)
        )

    def _start_handler(self, context: TaskContext) -> asyncio.Future[Any]:
        if self._handler_is_async:
            started = asyncio.ensure_future(self.handler(context))
        else:
            assert self._loop is not None
            in_context = contextvars.copy_context().run
            started = self._loop.run_in_executor(
                self._handler_threads, in_context, self.handler, context
            )
        # A handler stopped early may still raise; its outcome is discarded, not logged.
        started.add_done_callback(lambda done: done.cancelled() or done.exception())
        return started  # type: ignore[no-any-return]

    async def _until(self, *waits: Awaitable[Any]) -> None:
        """Wait until the first of ``waits`` is done (coroutines given are cancelled)."""
        futures = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future, given in zip(futures, waits, strict=True):
                if future is not given:  # made here: ours to cancel
                    future.cancel()

    async def _shut_down(self, running: dict[asyncio.Task[None], _Work]) -> None:
        """Let running handlers finish within the grace period, then hand back the rest
        (tasks a finishing handler claimed meanwhile included)."""
        assert self._loop is not None
        deadline = self._loop.time() + self.grace
        while running:
            jobs = list(running)
            log.info("worker %s: waiting for %s tasks", self.name, len(jobs))
            remaining = deadline - self._loop.time()
            late = set(jobs)
            if remaining > 0:
                _, late = await asyncio.wait(jobs, timeout=remaining)
            for job in late:
                work = running.get(job)
                if work is not None:
                    work.stop(HANDED_BACK)
            if late:
                await asyncio.wait(late)

    def _catch_signals(self) -> list[int]:
        caught: list[int] = []
        assert self._loop is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(signum, self.stop)
                caught.append(signum)
        return caught


class _Work:
    """A claimed task in the worker: its context, and why its work was stopped."""

    __slots__ = ("beating", "context", "ended", "stopped", "task", "timer")

    def __init__(self, task: TaskRecord) -> None:
        self.task = task
        self.context = TaskContext(task)
        self.stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None  # the next heartbeat
        self.beating: asyncio.Task[None] | None = None  # a heartbeat under way
        self.ended = False

    def stop(self, why: str) -> None:
        if not self.stopped.done():
            self.stopped.set_result(why)

    async def settled(self, handler: asyncio.Future[Any]) -> None:
        """Wait until the handler is done or the work stopped, whichever is first (one
        future and two callbacks: cheaper than ``asyncio.wait`` on the hot path)."""
        either: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(_: object) -> None:
            if not either.done():
                either.set_result(None)

        handler.add_done_callback(settle)
        self.stopped.add_done_callback(settle)
        try:
            await either
        finally:
            handler.remove_done_callback(settle)
            self.stopped.remove_done_callback(settle)

    def end_beats(self) -> None:
        self.ended = True
        if self.timer is not None:
            self.timer.cancel()
        if self.beating is not None:
            self.beating.cancel()


def _backoff(tries: int) -> float:
    """Seconds to wait before try ``tries + 1`` of a call the database did not answer:
    doubling from ``RETRY_FIRST`` up to ``RETRY_MOST``, jittered so that workers that
    failed together do not retry together."""
    delay: float = min(RETRY_MOST, RETRY_FIRST * 2.0 ** min(tries - 1, 16))
    return delay * random.uniform(0.5, 1.0)
