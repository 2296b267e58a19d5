"""A run's samples in the store: what it met per interval (users, pages, 429s, pauses,
the learned rate), written at its start, at each lease heartbeat and at its end.

Status, report and estimate read them (``ReadStore.latest_samples``, ``sample_buckets``).
A sample is a side record: a failed write is logged (``samples.write_failed``) and never
stops or slows the run, and its counts are carried into the next sample (counts are
deltas since the last sample written, so nothing is lost or counted twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from friendscrape.core.lease import jitter
from friendscrape.errors import StalledError, StoreConflictError, StoreError, WriterFailedError
from friendscrape.stores.base import RunSample, RunStore, now_utc

log = structlog.get_logger(__name__)

_FINAL_TIMEOUT = 2.0
"""Seconds the last sample may take: a stopping run must still exit inside its budget."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a run's requests go: ``host[:port]`` of the base URL ("" when the users name
    several hosts), and whether it is a loopback host (a local simulator)."""

    host: str
    simulated: bool

    @classmethod
    def of(cls, base_url: str | None) -> Upstream:
        """The upstream of ``base_url``; never its path, query, user or password."""
        if not base_url:
            return cls("", simulated=False)
        parts = urlsplit(base_url)
        name = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            port = None
        shown = f"[{name}]" if ":" in name else name
        host = f"{shown}:{port}" if port is not None else shown
        return cls(host, simulated=_loopback(name))


def _loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SampleFigures:
    """A run's running totals when sampled, and the lowest rate learned now (or None)."""

    users_done: int = 0
    pages: int = 0
    rate_limited: int = 0
    paused_seconds: float = 0.0
    learned_rate: float | None = None


class SampleRecorder:
    """Writes one run's samples: each the change in its totals since the last one written."""

    def __init__(
        self,
        store: RunStore,
        figures: Callable[[], SampleFigures],
        *,
        run_id: str,
        partition: int,
        source: str,
        upstream: Upstream,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._store = store
        self._figures = figures
        self._run_id = run_id
        self._partition = partition
        self._source = source
        self._upstream = upstream
        self._clock = clock
        self._written = SampleFigures()
        self.failures = 0

    async def record(self, *, final: bool = False, budget: float | None = None) -> bool:
        """Write the sample of now; False (logged) when the store did not take it.

        Only the last sample gets a ``budget`` (seconds): a write given up on may still land in
        the store, and a later sample would then count its figures again.
        """
        now = self._figures()
        last = self._written
        sample = RunSample(
            run_id=self._run_id,
            partition=self._partition,
            at=self._clock(),
            source=self._source,
            upstream_host=self._upstream.host,
            simulated=self._upstream.simulated,
            users_done=now.users_done - last.users_done,
            pages=now.pages - last.pages,
            rate_limited=now.rate_limited - last.rate_limited,
            paused_seconds=max(now.paused_seconds - last.paused_seconds, 0.0),
            learned_rate=now.learned_rate,
            final=final,
        )
        try:
            async with asyncio.timeout(budget):
                await self._write(sample)
        except (StoreError, TimeoutError) as exc:
            self.failures += 1
            log.warning(
                "samples.write_failed",
                error=str(exc) or type(exc).__name__,
                final=final,
                note="its counts go into the next sample",
            )
            return False
        self._written = now
        return True

    async def _write(self, sample: RunSample) -> None:
        """Append ``sample``, again after a jittered wait when the store aborted it for a
        concurrent update (it changed nothing then, so the append cannot land twice);
        other failures are not retried: a write given up on may still land."""
        for attempt in range(1, _CONFLICT_TRIES + 1):
            try:
                await self._store.record_sample(sample)
            except StoreConflictError as exc:
                if attempt == _CONFLICT_TRIES:
                    raise
                wait = _CONFLICT_WAIT * 2 ** (attempt - 1) * jitter()
                log.info("samples.retry", attempt=attempt, wait=round(wait, 2), error=str(exc))
                await asyncio.sleep(wait)
            else:
                return


_CONFLICT_TRIES = 4
_CONFLICT_WAIT = 0.5
"""Seconds before the first retry of an aborted sample, doubled each time (x0.5-1.5)."""


def _no_deadline() -> float | None:
    return None


@asynccontextmanager
async def sampling(
    recorder: SampleRecorder,
    *,
    every: float,
    deadline: Callable[[], float | None] = _no_deadline,
) -> AsyncIterator[None]:
    """Sample the run at once and every ``every`` seconds in a task of its own (a slow
    store never holds the run up), and a final sample when the block ends: returned or
    stopped, within the stop's ``deadline`` (loop time, None: no stop) so the sample
    never eats the time a stopping process has left to exit. A run ended by its store
    failing gets no final sample: the store could not take it."""
    stop = asyncio.Event()

    async def beat() -> None:
        while not stop.is_set():
            await recorder.record()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await stop.wait()

    task = asyncio.create_task(beat(), name="samples")
    failed_store = False
    try:
        yield
    except (StoreError, WriterFailedError, StalledError):
        failed_store = True
        raise
    finally:
        stop.set()
        loop = asyncio.get_running_loop()
        end = loop.time() + _FINAL_TIMEOUT
        stop_at = deadline()
        if stop_at is not None:
            end = min(end, stop_at)
        # A sample being written is let finish (briefly): cut off, it might still land
        # and the final one would count its figures twice.
        done: set[asyncio.Task[None]] = set()
        if not failed_store and end > loop.time():
            done, _ = await asyncio.wait({task}, timeout=end - loop.time())
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not failed_store:
                log.warning("samples.final_skipped", reason="no time left to write it")
        elif end > loop.time():
            await recorder.record(final=True, budget=end - loop.time())
