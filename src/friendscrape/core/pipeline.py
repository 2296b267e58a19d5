"""The one event loop of a partition run.

    feeder ──► fetchers (at most `concurrency`) ──► bounded queue ──► writer ──► store
                                                        ▲
                                        watchdog: results waiting, nothing saved ⇒ exit

A full queue blocks the fetchers, so memory stays bounded at any concurrency and the
fetchers can never keep scraping while nothing is saved. The writer saves in chunks (by
rows and by time), each chunk one transaction, retrying transient store errors; when it
cannot save, or the watchdog sees no successful write for `stall_timeout` seconds while
results wait, the run raises RunAbortedError and the process exits non-zero.

On `stop` (SIGTERM/SIGINT) the feeder takes no new users, in-flight users get
`grace_period` seconds, every finished result is saved, and the run returns normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from friendscrape import loopbound
from friendscrape.core.breaker import BreakerConfig, CircuitBreaker, Trip, Verdict
from friendscrape.core.collect import CollectConfig, Collector
from friendscrape.core.counters import RunCounters
from friendscrape.core.heap import heap_kept
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.resolve import Resolver
from friendscrape.core.samples import SampleFigures
from friendscrape.errors import (
    RunAbortedError,
    StalledError,
    StoreError,
    StoreTransientError,
    UpstreamDownError,
    WriterFailedError,
)
from friendscrape.fetch.http import HttpClient, HttpConfig, Limiter
from friendscrape.models import FriendList, User
from friendscrape.retry import RetryPolicy, retry_call
from friendscrape.sources.base import Lookups, Source
from friendscrape.stores.base import RunStore

log = structlog.get_logger("friendscrape.core.pipeline")

_FEED_PAGE = 500
_GC_YOUNG_THRESHOLD = 10_000
_LAG_PROBE_EVERY = 0.25  # seconds between two probes of the event loop's lag
# Of the stop's budget (stop_timeout), the seconds kept for closing the store and exiting
# after the final flush, and the seconds the flush keeps when the grace period is long.
_STOP_EXIT_MARGIN = 2.0
_FLUSH_RESERVE = 5.0


_relaxed = 0  # runs inside _young_gc_relaxed now (a worker's partitions may overlap)
_thresholds = gc.get_threshold()


@contextlib.contextmanager
def _young_gc_relaxed() -> Iterator[None]:
    """Collect the young generation every ``_GC_YOUNG_THRESHOLD`` allocations while any
    run is inside; the thresholds from before the first are set again after the last."""
    global _relaxed, _thresholds  # noqa: PLW0603 - one setting of the process
    if _relaxed == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_GC_YOUNG_THRESHOLD, *_thresholds[1:])
    _relaxed += 1
    try:
        yield
    finally:
        _relaxed -= 1
        if _relaxed == 0:
            gc.set_threshold(*_thresholds)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one run did."""

    partition: int
    users: int
    saved: int
    statuses: dict[str, int]
    friends: int
    pages: int
    seconds: float
    stopped: bool

    @property
    def users_per_minute(self) -> float:
        """Users finished per minute of run time."""
        return self.users * 60.0 / self.seconds if self.seconds > 0 else 0.0


def combined(summaries: list[RunSummary], *, stopped: bool) -> RunSummary:
    """The summaries of one worker's partitions (``run --partition next``) as one; its
    partition is the last one collected (0: none)."""
    statuses: dict[str, int] = {}
    for one in summaries:
        for status, users in one.statuses.items():
            statuses[status] = statuses.get(status, 0) + users
    return RunSummary(
        partition=summaries[-1].partition if summaries else 0,
        users=sum(s.users for s in summaries),
        saved=sum(s.saved for s in summaries),
        statuses=statuses,
        friends=sum(s.friends for s in summaries),
        pages=sum(s.pages for s in summaries),
        seconds=sum(s.seconds for s in summaries),
        stopped=stopped,
    )


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The settings one partition's run uses, and those of the parts it builds."""

    concurrency: int
    queue_size: int
    batch_size: int
    flush_interval: float
    write_timeout: float
    stall_timeout: float
    grace_period: float
    stop_timeout: float
    progress_interval: float
    retry_failed: bool
    users_limit: int | None
    http: HttpConfig
    collect: CollectConfig
    breaker: BreakerConfig
    store_retry: RetryPolicy


@dataclass(frozen=True, slots=True)
class Handover:
    """How one of a worker's partitions hands its fetchers to the next (``run
    --partition next``), so they never wait for a claim: ``near`` is set once the users
    left to feed would all be fed within ``lead_seconds()`` (the seconds the worker's
    next claim takes to start feeding, at this run's pace; at least ``concurrency``
    users), and the worker claims its next partition then. A partition claimed so
    reads its first pending users at once but takes no fetcher slot before ``go`` is
    set (the partition before it fed), so the one before keeps its users first; once
    ``go`` is set, a ``given_back`` set too (the worker's leave rule, made again then,
    left it to faster workers) ends the run before it feeds any user."""

    near: asyncio.Event
    lead_seconds: Callable[[], float]
    go: asyncio.Event | None = None
    given_back: asyncio.Event | None = None


class _SlotWait:
    """The feeder's wait for a fetcher slot, which a stop interrupts: the feeder's task
    is cancelled only while it waits for a slot, and that cancel taken back (``woke``)."""

    __slots__ = ("_cancelled", "_task", "active")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self._task = task
        self._cancelled = False
        self.active = False

    def interrupt(self, stopped: asyncio.Future[Any]) -> None:
        """Done callback of the stop's waiter: cancel the feeder's wait, if it waits."""
        if self.active and not stopped.cancelled() and self._task is not None:
            self._cancelled = True
            self._task.cancel()

    def woke(self) -> bool:
        """Whether the cancel just caught was the stop's alone (then taken back), not a
        cancel of the run itself, which goes on."""
        if not self._cancelled or self._task is None:
            return False
        self._cancelled = False
        return self._task.uncancel() == 0


class PartitionRun:
    """Collect every pending user of one partition; see the module docstring."""

    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        source: Source,
        *,
        partition: int,
        stop: asyncio.Event | None = None,
        limiter: Limiter | None = None,
        stats: RunCounters | None = None,
        loop_lag: LoopLag | None = None,
        http: HttpClient | None = None,
        slots: asyncio.BoundedSemaphore | None = None,
        fed: asyncio.Event | None = None,
        handover: Handover | None = None,
        pending: int | None = None,
    ) -> None:
        self._config = config
        self._store = store
        # The one layer that retries the run's store calls (stores never retry).
        self._store_retry = config.store_retry
        self._source = source
        self._partition = partition
        self._stop = stop if stop is not None else asyncio.Event()
        self._limiter = limiter
        # An open client the worker's runs share (run --partition next), used, not
        # closed; None: the run opens its own.
        self._http = http
        # The fetcher slots of the worker's partitions (run --partition next): the next
        # partition's users take the slots this one's last users free. None: its own.
        self._slots = slots
        # Set once every pending user was handed to a fetcher (not on a stop or the
        # users limit): the worker may claim its next partition while this one drains.
        self._fed = fed if fed is not None else asyncio.Event()
        self._handover = handover
        # The partition's pending users as its claim just read them (run --partition
        # next): not counted again as the run starts. Only steers the hand-over and the
        # progress figures; the feed reads pending users until none is left.
        self._pending = pending
        # A limiter shared with the worker's earlier runs has paused before: this run's
        # samples count only its own pauses.
        self._paused_before = limiter.paused_seconds() if limiter is not None else 0.0
        self.stats = stats if stats is not None else RunCounters()
        # Measured here, read by the limiter: the caller hands the same one to both.
        self.loop_lag = loop_lag if loop_lag is not None else LoopLag()
        self._queue: asyncio.Queue[FriendList | None] = loopbound.Queue(config.queue_size)
        # The writer and the watchdog read one clock, time.monotonic() (the counters'):
        # only the stop's deadline, handed to asyncio.timeout_at, is in loop time.
        self._waiting_since: float | None = None  # oldest result not yet saved
        self._unqueued: list[FriendList] = []  # finished while shutdown cancelled their put
        self._remaining: int | None = None
        self._resolver: Resolver | None = None  # when the source takes handles
        self._fatal: RunAbortedError | None = None  # raised by a fetcher: ends the run
        self._stop_deadline: float | None = None  # loop time the stopping run must end by
        self._save_budget: loopbound.Deadline | None = None  # of the write under way
        # Holds users failing alike (cannot connect, DNS, a generic 404...) until it
        # knows whether the upstream is down: then they stay pending, not failed.
        self._breaker: CircuitBreaker[FriendList] = CircuitBreaker(config.breaker)

    async def run(self) -> RunSummary:
        """Run to completion (or until stopped); raise RunAbortedError if saving fails."""
        # Each page allocates thousands of short-lived containers (nodes, tuples, lists)
        # that reference counting frees; none form cycles. The default young-generation
        # threshold (700 allocations) still runs a collection every few pages, which
        # cost about 7% of the collector's CPU; collecting every 10,000 keeps peak
        # memory the same (benchmarks/collector.py, benchmarks/memory.py).
        with _young_gc_relaxed(), heap_kept():  # heap_kept: see core/heap.py
            return await self._run()

    async def _pending_count(self) -> int:
        """The partition's pending users: as its claim read them, or counted now."""
        if self._pending is not None:
            return self._pending
        retry_failed = self._config.retry_failed
        return await retry_call(
            lambda: self._store.pending_count(self._partition, retry_failed=retry_failed),
            on=StoreTransientError,
            policy=self._store_retry,
            event="store.count_pending.retry",
        )

    async def _run(self) -> RunSummary:
        s = self._config
        pending = await self._pending_count()
        if s.users_limit is not None:
            pending = min(pending, s.users_limit)
        self._remaining = pending
        log.info(
            "run.started",
            pending=pending,
            concurrency=s.concurrency,
            source=self._source.name,
            max_friends=s.collect.max_friends,
            batch_size=s.batch_size,
        )
        if pending == 0:
            self._all_fed()
            return self._summary()
        client = (
            self._http.counting(self.stats.fetch)
            if self._http is not None
            else HttpClient(s.http, counts=self.stats.fetch, limiter=self._limiter)
        )
        async with client as http:
            collector = Collector(
                s.collect, self._source, http, partition=self._partition, stats=self.stats
            )
            if isinstance(self._source, Lookups):
                self._resolver = Resolver(
                    self._source,
                    http,
                    self._store,
                    concurrency=s.concurrency,
                    store_retry=self._store_retry,
                    ended=collector.ended,
                )
            fetchers: set[asyncio.Task[None]] = set()
            try:
                async with asyncio.TaskGroup() as tg:
                    writer = tg.create_task(self._writer(), name="writer")
                    watchdog = tg.create_task(self._watchdog(), name="watchdog")
                    progress = tg.create_task(self._progress(), name="progress")
                    lag = tg.create_task(self._measure_loop_lag(), name="loop-lag")
                    clock = tg.create_task(self._stop_clock(), name="stop-clock")
                    await self._feed(collector, fetchers)
                    await self._drain(fetchers)
                    await self._settle(self._breaker.finish())
                    await self._queue.put(None)
                    await writer
                    for task in (watchdog, progress, lag, clock):
                        task.cancel()
                if self._fatal is not None:
                    raise self._fatal
            except* (RunAbortedError, StoreError) as group:
                # One clause for both: the writer failing (WriterFailedError) or the
                # watchdog firing (StalledError) must surface as that error alone, so the
                # caller exits non-zero with one line, not an exception group's traceback.
                first = group.exceptions[0]
                if not isinstance(first, RunAbortedError):
                    log.error("store.failed", error=str(first), cause=type(first).__name__)
                raise first from None
            finally:
                for task in fetchers:
                    task.cancel()
        summary = self._summary()
        log.info(
            "run.finished",
            users=summary.users,
            saved=summary.saved,
            statuses=summary.statuses,
            seconds=round(summary.seconds, 1),
            users_per_min=round(summary.users_per_minute, 1),
            stopped=summary.stopped,
        )
        return summary

    def _summary(self) -> RunSummary:
        st = self.stats
        return RunSummary(
            self._partition,
            st.users_done,
            st.users_saved,
            dict(st.statuses),
            st.friends,
            st.pages,
            st.elapsed(),
            self._stop.is_set(),
        )

    # -- feeder and fetchers ----------------------------------------------------------

    async def _feed(self, collector: Collector, fetchers: set[asyncio.Task[None]]) -> None:
        s = self._config
        slots = self._slots
        if slots is None:
            slots = loopbound.BoundedSemaphore(s.concurrency)
        # One waiter on the stop for the whole feed, not one task per user: a stop
        # interrupts the feeder's wait for a slot (_SlotWait), if it is waiting.
        stopped = asyncio.ensure_future(self._stop.wait())
        waiting = _SlotWait(asyncio.current_task())
        stopped.add_done_callback(waiting.interrupt)
        try:
            if await self._feed_users(collector, fetchers, slots, waiting):
                log.info("run.fed", in_flight=len(fetchers))
                self._all_fed()
        finally:
            stopped.remove_done_callback(waiting.interrupt)
            stopped.cancel()

    async def _feed_users(
        self,
        collector: Collector,
        fetchers: set[asyncio.Task[None]],
        slots: asyncio.BoundedSemaphore,
        waiting: _SlotWait,
    ) -> bool:
        """Hand each pending user to a fetcher; True once every one was, False when a
        stop or the users limit ended the feed first."""
        s = self._config
        # The loop's own create_task: asyncio.create_task asks for the running loop per
        # user, a getpid system call each on Python 3.11.
        loop = asyncio.get_running_loop()
        taken = 0
        cursor: str | None = None
        while not self._stop.is_set():
            page = await retry_call(
                lambda c=cursor: self._store.pending_users(  # type: ignore[misc]
                    self._partition, retry_failed=s.retry_failed, cursor=c, limit=_FEED_PAGE
                ),
                on=StoreTransientError,
                policy=self._store_retry,
                event="store.read_pending.retry",
            )
            users: Sequence[User] = page.users
            if self._resolver is not None:
                # Handles are looked up (and their ids saved) before their users start.
                resolved = await self._resolve_or_stop(self._resolver, users)
                if resolved is None:
                    return False
                users = resolved
            if cursor is None and not await self._handed_over():
                return False
            for user in users:
                if s.users_limit is not None and taken >= s.users_limit:
                    return False
                if not await self._acquire_or_stop(slots, waiting):
                    return False
                taken += 1
                if self._handover is not None and not self._handover.near.is_set():
                    self._near(self._handover, taken)
                task = loop.create_task(self._fetch_one(collector, user, slots))
                fetchers.add(task)
                task.add_done_callback(fetchers.discard)
            if page.cursor is None:
                return not self._stop.is_set()
            cursor = page.cursor
        return False

    def _all_fed(self) -> None:
        self._fed.set()
        if self._handover is not None:
            self._handover.near.set()  # if not yet: fewer users than counted, say

    async def _handed_over(self) -> bool:
        """Wait until the worker's partition before this one is fed (``Handover.go``);
        False if a stop comes first or the partition was given back meanwhile."""
        go = self._handover.go if self._handover is not None else None
        if go is None or go.is_set():
            return not self._given_back()
        ready = asyncio.ensure_future(go.wait())
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        stopped.cancel()
        # Its seconds (rates, the summary) count from its first user, not the wait.
        self.stats.started = time.monotonic()
        return go.is_set() and not self._stop.is_set() and not self._given_back()

    def _given_back(self) -> bool:
        back = self._handover.given_back if self._handover is not None else None
        if back is None or not back.is_set():
            return False
        log.info("run.given_back")
        return True

    def _near(self, handover: Handover, taken: int) -> None:
        """Set ``handover.near`` once the users left to feed (of ``_remaining``, after
        ``taken``) would be fed within its lead: at this run's pace, users finished a
        second, the worker's next partition then starts feeding as the last are."""
        left = (self._remaining or 0) - taken
        lead = self._config.concurrency
        done = self.stats.users_done
        if done >= self._config.concurrency:
            lead += math.ceil(done / self.stats.elapsed() * handover.lead_seconds())
        if left <= lead:
            log.info("run.nearly_fed", to_feed=left, lead_users=lead)
            handover.near.set()

    async def _resolve_or_stop(
        self, resolver: Resolver, users: Sequence[User]
    ) -> list[User] | None:
        """The users to collect once their handles are looked up; None if a stop comes
        first (look-ups not saved yet are made again by the next run)."""
        resolving = asyncio.ensure_future(resolver.resolve(users))
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({resolving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not resolving.done():
            resolving.cancel()
            await asyncio.gather(resolving, return_exceptions=True)
            return None
        ready, ended = resolving.result()
        self.stats.users_saved += ended
        return ready

    async def _acquire_or_stop(self, slots: asyncio.BoundedSemaphore, waiting: _SlotWait) -> bool:
        """Take a fetcher slot, unless a stop comes first. The slot is awaited directly,
        the stop cancelling that wait (``waiting``): a task and a wait on two futures per
        user were three running-loop lookups (getpid system calls on Python 3.11) and a
        wake-up more, for every user once the slots are full."""
        if self._stop.is_set():
            return False
        if not slots.locked():
            # A free slot is taken without suspending: no stop can come in between.
            await slots.acquire()
            return True
        waiting.active = True
        try:
            await slots.acquire()
        except asyncio.CancelledError:
            # A slot handed over as the cancel came is given back by acquire() itself.
            if not waiting.woke():
                raise
            return False
        finally:
            waiting.active = False
        if self._stop.is_set():
            slots.release()
            return False
        return True

    async def _fetch_one(
        self, collector: Collector, user: User, slots: asyncio.BoundedSemaphore
    ) -> None:
        self.stats.in_flight += 1
        try:
            outcome = await collector.collect_outcome(user)
        except RunAbortedError as exc:
            # Fetcher tasks are not in the task group: hand the error to run(), which
            # raises it once the users already finished are saved.
            if self._fatal is None:
                self._fatal = exc
                log.error("run.aborting", error=str(exc), cause=type(exc).__name__)
            self._stop.set()
            return
        finally:
            self.stats.in_flight -= 1
            slots.release()
        await self._settle(self._breaker.observe(outcome.result, outcome.failure))

    async def _settle(self, verdict: Verdict[FriendList]) -> None:
        """Queue the results the circuit breaker releases; end the run if it tripped."""
        if verdict.trip is not None:
            self._trip(verdict.trip)
        for index, result in enumerate(verdict.release):
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
            try:
                await self._queue.put(result)
            except asyncio.CancelledError:
                # Shutdown cancelled us while the queue was full: the results are
                # finished, so hand them to the writer's final flush, not drop them.
                self._unqueued.extend(verdict.release[index:])
                raise

    def _trip(self, trip: Trip) -> None:
        log.error(
            "breaker.tripped", cause=trip.cause, users=trip.users, url=trip.url.partition("?")[0]
        )
        if self._fatal is None:
            self._fatal = UpstreamDownError(trip.message())
        self._stop.set()

    async def _drain(self, fetchers: set[asyncio.Task[None]]) -> None:
        """Wait for in-flight users; after a stop, give them the grace period only."""
        while fetchers:
            if self._stop.is_set():
                break
            stopped = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({*fetchers, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        if not fetchers:
            return
        # The grace period comes out of the stop's budget, leaving the final flush its share.
        left = self._stop_deadline_at() - asyncio.get_running_loop().time() - _FLUSH_RESERVE
        grace = max(min(self._config.grace_period, left), 0.0)
        log.info("run.draining", in_flight=len(fetchers), grace_seconds=round(grace, 1))
        _, pending = await asyncio.wait(set(fetchers), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.info(
                "run.abandoned",
                users=len(pending),
                note="abandoned mid-list; collected on the next run",
            )

    # -- writer -----------------------------------------------------------------------

    async def _writer(self) -> None:
        # The loop looked up once, not at each timer: on Python 3.11 each lookup is a
        # getpid system call.
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            item = await self._queue.get()
            batch: list[FriendList] = []
            if item is None:
                done = True
            else:
                batch.append(item)
                done = await self._fill(batch, loop)
            if done and self._unqueued:
                batch.extend(self._unqueued)
                self._unqueued.clear()
            if batch:
                await self._save(batch, loop)

    async def _fill(self, batch: list[FriendList], loop: asyncio.AbstractEventLoop) -> bool:
        """Add queued results to ``batch`` until it is full or ``flush_interval`` has
        passed since it started; True once the end of the queue (None) was taken."""
        s = self._config
        queue = self._queue
        # What is queued already is taken first, without a timer: a batch the queue
        # holds whole (a writer behind the fetchers) sets none.
        while len(batch) < s.batch_size and not queue.empty():
            item = queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
        if len(batch) >= s.batch_size:
            return False
        # One timer a batch, not one per wait: each timer is a loop wake-up (and, on
        # Python 3.11, system calls to find the running loop and task).
        try:
            async with loopbound.Deadline(loop, loop.time() + s.flush_interval):
                while len(batch) < s.batch_size:
                    if not queue.empty():
                        item = queue.get_nowait()  # no wait for a result queued
                    else:
                        item = await queue.get()
                    if item is None:
                        return True
                    batch.append(item)
        except TimeoutError:
            pass
        return False

    async def _save(self, batch: Sequence[FriendList], loop: asyncio.AbstractEventLoop) -> None:
        s = self._config

        last: list[StoreError] = []

        async def attempt() -> None:
            try:
                async with asyncio.timeout_at(loop.time() + s.write_timeout):
                    await self._store.save(batch)
            except TimeoutError:
                msg = f"write of {len(batch)} rows took over {s.write_timeout:g}s"
                last.append(StoreTransientError(msg))
                raise last[-1] from None
            except StoreError as exc:
                last.append(exc)
                raise

        started = time.monotonic()
        try:
            failed = await self._first_write(batch, loop, last)
            if failed is not None:
                # Once the run is stopping, the retries end by the stop's deadline
                # (pulled in by _stop_clock when the stop comes mid-write): a store
                # stuck behind another writer's lock must not outlast the platform's kill.
                async with loopbound.Deadline(loop, self._stop_deadline) as budget:
                    self._save_budget = budget
                    await retry_call(
                        attempt,
                        on=StoreTransientError,
                        policy=self._store_retry,
                        event="writer.retry",
                        first_failure=failed,
                    )
        except StoreError as exc:
            log.error("writer.failed", rows=len(batch), error=str(exc), cause=type(exc).__name__)
            raise WriterFailedError(f"could not save {len(batch)} results: {exc}") from exc
        except TimeoutError:
            cause = f"; last error: {last[-1]}" if last else ""
            msg = (
                f"could not save {len(batch)} results within the stop's "
                f"{s.stop_timeout:g}s (stop_timeout){cause}"
            )
            log.error("writer.failed", rows=len(batch), error=msg, cause="stop_timeout")
            raise WriterFailedError(msg) from None
        finally:
            self._save_budget = None
        now = time.monotonic()
        self.stats.last_write = now
        self.stats.users_saved += len(batch)
        self._waiting_since = now if self._queue.qsize() else None
        log.debug("writer.flush", rows=len(batch), seconds=round(now - started, 3))

    async def _first_write(
        self, batch: Sequence[FriendList], loop: asyncio.AbstractEventLoop, last: list[StoreError]
    ) -> StoreTransientError | None:
        """A batch's first write, under one timer for both the write timeout and the
        stop's deadline (the retries' machinery, and its second timer, only after a
        failure): the failure to retry, or None once saved. A permanent store error is
        raised, and so is the timer's TimeoutError when the stop's deadline is what
        passed."""
        s = self._config
        deadline = loop.time() + s.write_timeout
        stop = self._stop_deadline
        try:
            # The loop given, not looked up (a getpid each on Python 3.11).
            async with loopbound.Deadline(
                loop, deadline if stop is None else min(deadline, stop)
            ) as t:
                self._save_budget = t  # a stop coming meanwhile pulls it in, never out
                await self._store.save(batch)
        except TimeoutError:
            stop = self._stop_deadline
            if stop is not None and stop <= deadline:
                raise
            failed = StoreTransientError(
                f"write of {len(batch)} rows took over {s.write_timeout:g}s"
            )
            last.append(failed)
            return failed
        except StoreTransientError as exc:
            last.append(exc)
            return exc
        except StoreError as exc:
            last.append(exc)
            raise
        finally:
            self._save_budget = None
        return None

    # -- watchdog and progress --------------------------------------------------------

    async def _watchdog(self) -> None:
        timeout = self._config.stall_timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            since = self._waiting_since
            waited = time.monotonic() - since if since is not None else 0.0
            if waited > timeout:
                log.error(
                    "watchdog.stalled",
                    seconds_without_write=round(waited, 1),
                    queued=self._queue.qsize(),
                    stall_timeout=timeout,
                    cause="results are waiting but no write has succeeded",
                )
                msg = f"no successful write for {waited:.0f}s while results waited"
                raise StalledError(msg)

    def stop_deadline(self) -> float | None:
        """The loop time a stopping run must be over by (None: not stopping)."""
        return self._stop_deadline

    def _stop_deadline_at(self) -> float:
        """The loop time a stopping run must be over by, set at the first call after a stop."""
        if self._stop_deadline is None:
            budget = max(self._config.stop_timeout - _STOP_EXIT_MARGIN, 0.0)
            self._stop_deadline = asyncio.get_running_loop().time() + budget
        return self._stop_deadline

    async def _stop_clock(self) -> None:
        """When the stop comes, start its budget and bring a write under way inside it."""
        await self._stop.wait()
        deadline = self._stop_deadline_at()
        budget = self._save_budget
        # An expired timer (a first write's write timeout, its task not yet resumed)
        # cannot be moved: the retries that follow start under the stop's deadline.
        if budget is not None and not budget.expired():
            # Never later than it was: a first write's timer is its write timeout too.
            when = budget.when()
            budget.reschedule(deadline if when is None else min(when, deadline))
        left = deadline - asyncio.get_running_loop().time()
        log.info("run.stopping", seconds_left=round(left, 1))

    async def _measure_loop_lag(self) -> None:
        """Keep ``loop_lag`` current: how much later than asked a sleep wakes up."""
        while True:
            asked = time.monotonic()
            await asyncio.sleep(_LAG_PROBE_EVERY)
            late = max(time.monotonic() - asked - _LAG_PROBE_EVERY, 0.0)
            self.loop_lag.observe(late)

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(self._config.progress_interval)
            log.info("progress", **self.progress_fields())

    def sample_figures(self) -> SampleFigures:
        """The run's totals so far for its samples in the store, and the lowest rate
        learned from 429s now (None when learning is off or nothing was learned)."""
        st = self.stats
        limiter = self._limiter
        learned = list(limiter.learned_rates().values()) if limiter is not None else []
        return SampleFigures(
            users_done=st.users_done,
            pages=st.pages,
            rate_limited=st.fetch.rate_limited,
            paused_seconds=limiter.paused_seconds() - self._paused_before
            if limiter is not None
            else 0.0,
            learned_rate=min(learned) if learned else None,
        )

    def progress_fields(self) -> dict[str, object]:
        """The figures of a progress event."""
        st = self.stats
        elapsed = st.elapsed()
        now = time.monotonic()
        remaining = None if self._remaining is None else max(self._remaining - st.users_done, 0)
        pauses = self._limiter.paused() if self._limiter is not None else {}
        paused = {host: round(until - now, 1) for host, until in pauses.items() if until > now}
        learned = self._limiter.learned_rates() if self._limiter is not None else {}
        return {
            "done": st.users_done,
            "saved": st.users_saved,
            "remaining": remaining,
            "users_per_min": round(st.users_done * 60 / elapsed, 1),
            "pages_per_s": round(st.pages / elapsed, 1),
            "in_flight": st.in_flight,
            "queued": self._queue.qsize(),
            "since_last_write": round(now - st.last_write, 1),
            "loop_lag_ms": round(self.loop_lag.seconds() * 1000, 1),
            "retries": dict(st.fetch.retries),
            "errors": dict(st.errors),
            "statuses": dict(st.statuses),
            "paused": paused,
            "learned_rate": {key: round(rate, 1) for key, rate in learned.items()},
        }
