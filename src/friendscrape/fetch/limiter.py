"""Per-host pacing: a slot per host holding a request rate, a concurrency that adapts,
the host's pause, and its quota windows (one, or one per credential of a pool).

Modelled on scrapy's downloader slots and AutoThrottle. Before each request a
coroutine takes its place in the host's FIFO line; the head of the line waits until

1. the host is not paused (a 429, or every quota window spent until its reset),
2. fewer requests are in flight than the slot's current concurrency,
3. a quota window can start one (``fetch/quota.py``: what the headers say is left,
   spread over what is left of the window),
4. the token bucket (``rate_limit`` requests/s) has a token, and
5. the rate learned from 429s that came without quota headers allows one
   (``fetch/learned_rate.py``: per host, or per token of a pool).

Waiting is ``asyncio`` waiting on an event with a timeout, so a paused host blocks no
other coroutine, and ``HostLimiter.paused`` tells progress events which hosts wait and
until when. After each response the slot learns: quota headers update the window of the
credential that was used, a 429 pauses the whole host, and ``adapt`` moves the
concurrency.

Each part decides in a module of its own: ``fetch/host_pause.py`` the pause (and backing
off), ``fetch/concurrency.py`` the concurrency, ``fetch/token_bucket.py`` the fixed rate,
``fetch/quota.py`` and ``fetch/learned_rate.py`` what the upstream told or taught; the
slot here keeps the line and asks each in turn.

A pause longer than ``max_pause`` is not waited out: the slot raises PauseTooLongError
(from ``release`` for a 429's Retry-After, from ``acquire`` for a spent window) and so
does every later ``acquire`` on the host, so the run ends at once with its unfinished
users left pending for a later restart, instead of sleeping for hours with nothing to
save (which no watchdog would notice).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from friendscrape import defaults, loopbound
from friendscrape.fetch.concurrency import Concurrency, LagProbe
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.host_pause import HostPause
from friendscrape.fetch.http import Permit
from friendscrape.fetch.learned_rate import LearnedRate
from friendscrape.fetch.quota import Quota
from friendscrape.fetch.ratelimit_headers import RateLimitInfo, read_rate_limit
from friendscrape.fetch.token_bucket import TokenBucket

log = structlog.get_logger("friendscrape.fetch.limiter")


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    """How hosts are paced: requests/s (None: unlimited), concurrency cap, adaptivity,
    and the longest pause an upstream may ask for before the run ends instead."""

    rate: float | None = None
    concurrency: int = defaults.CONCURRENCY
    adaptive: bool = True
    max_pause: float = 900.0
    learn_rate: bool = True


def _no_lag() -> float:
    return 0.0


class _LearnedRates:
    """Rates learned from 429s without quota headers: the host's (key None), or with a
    pool each token's, since the upstream counts each token apart; off unless ``enabled``."""

    def __init__(self, host: str, pause: HostPause, *, enabled: bool) -> None:
        self._host = host
        self._pause = pause
        self._enabled = enabled
        self.by_key: dict[str | None, LearnedRate] = {}

    def wait(self, key: str | None, now: float) -> float:
        """Seconds the rate learned for ``key`` still asks the next request to wait."""
        learned = self.by_key.get(key)
        if learned is None:
            return 0.0
        if learned.settle(now):
            self._said(learned, key)
        return learned.wait(now)

    def _of(self, key: str | None, now: float) -> LearnedRate:
        learned = self.by_key.get(key)
        if learned is None:
            learned = self.by_key[key] = LearnedRate(now, self._pause)
        return learned

    def take(self, key: str | None, now: float) -> None:
        """A request with ``key`` starts."""
        if self._enabled:
            self._of(key, now).take(now)

    def answered(self, key: str | None, now: float) -> None:
        """A response other than a 429 came for ``key``."""
        if self._enabled:
            self._of(key, now).answered(now)

    def limited(self, key: str | None, now: float) -> None:
        """A 429 that told no quota: cut the rate learned for the host (or the token)."""
        if not self._enabled:
            return
        learned = self._of(key, now)
        if learned.limited(now):
            self._said(learned, key)

    def _said(self, learned: LearnedRate, key: str | None) -> None:
        """Log what a 429 (or the end of the pause after one) changed in a learned rate."""
        if learned.given_up:
            reason = (
                "429s kept coming after the rate was cut"
                if learned.doubts
                else "429s came alone: the requests in flight with them got through"
            )
            log.warning(
                "limiter.rate_given_up",
                host=self._host,
                credential=key,
                cuts=learned.cuts,
                reason=f"{reason}: not a rate limit; requests go unpaced again and no "
                "rate is learned for this host",
            )
            return
        log.info(
            "limiter.rate_learned",
            host=self._host,
            credential=key,
            rate=round(learned.rate or 0.0, 1),
            cuts=learned.cuts,
        )


class _Slot:
    """One host's pacing: its FIFO line, and the parts that each decide a wait (see the
    module docstring)."""

    def __init__(
        self,
        host: str,
        config: LimiterConfig,
        lag: LagProbe,
        pool: CredentialPool | None,
        clock: Callable[[], float],
    ) -> None:
        self.host = host
        self._pool = pool
        self._clock = clock
        self._quota = Quota()
        # Loop looked up once: requests wait in the line for about every page of a busy
        # run, each wait a getpid system call on Python 3.11 with asyncio's own.
        self._line = loopbound.Lock()
        self._changed = loopbound.Event()
        self._pause = HostPause(host, config.max_pause, self._changed.set)
        self._concurrency = Concurrency(host, config.concurrency, adaptive=config.adaptive, lag=lag)
        self._bucket = TokenBucket(config.rate, clock())
        self._learned = _LearnedRates(host, self._pause, enabled=config.learn_rate)

    @property
    def in_flight(self) -> int:
        """Requests to this host under way."""
        return self._concurrency.in_flight

    @property
    def limit(self) -> float:
        """How many may be under way at once (whole requests: its integer part)."""
        return self._concurrency.limit

    @property
    def paused_until(self) -> float:
        """The monotonic time the host's current (or last) pause ends."""
        return self._pause.paused_until

    @property
    def learned(self) -> Mapping[str | None, LearnedRate]:
        """The rates learned from 429s, by credential (None: the host's own)."""
        return self._learned.by_key

    def paused_seconds(self, now: float) -> float:
        """Seconds this host has spent paused so far (a pause under way counts to ``now``)."""
        return self._pause.paused_seconds(now)

    # -- acquiring --------------------------------------------------------------------

    async def acquire(self) -> Permit:
        # A request that may start now starts without entering the line while nobody
        # holds it. Through the lock alone, once a line had formed (slow start, a pause)
        # it never emptied: each waiter takes its own turn of the event loop to pass the
        # lock on, so one request started per turn and the loop woke for every page.
        if not self._line.locked():
            self._pause.check()
            now = self._clock()
            if self._delay(now) <= 0:
                return self._start(now)
        async with self._line:
            while True:
                self._pause.check()
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    return self._start(now)
                self._changed.clear()
                try:
                    async with asyncio.timeout(None if math.isinf(delay) else delay):
                        await self._changed.wait()
                except TimeoutError:
                    pass

    def _delay(self, now: float) -> float:
        """Seconds the head of the line must still wait (inf: until a response)."""
        if self._pause.paused_until > now:
            return self._pause.paused_until - now
        if self._concurrency.full:
            return math.inf
        key: str | None = None
        if self._pool is not None:
            credential, wait = self._pool.choose(now)
            spent = self._pool.all_spent(now)
            key = credential.fingerprint
        else:
            wait = self._quota.wait(now)
            spent = self._quota.spent(now)
        if spent:
            self._pause.pause(now, wait, "quota spent: waiting for the window to reset")
            return wait
        learned_wait = self._learned.wait(key, now)
        return max(wait, self._bucket.wait(now), learned_wait)

    def _start(self, now: float) -> Permit:
        self._concurrency.started()
        self._bucket.take()
        if self._pool is not None:
            credential, _ = self._pool.choose(now)
            seq = self._pool.quota(credential.fingerprint).take(now)
            self._learned.take(credential.fingerprint, now)
            return Permit(headers=credential.headers(), credential=credential.fingerprint, seq=seq)
        self._learned.take(None, now)
        return Permit(seq=self._quota.take(now))

    # -- learning ---------------------------------------------------------------------

    def release(
        self, permit: Permit | None, status: int | None, headers: Mapping[str, str], latency: float
    ) -> None:
        now = self._clock()
        self._concurrency.ended()
        info = read_rate_limit(headers) if headers else RateLimitInfo()
        quota = self._quota_of(permit)
        if permit is not None and permit.seq >= 0:
            quota.learn(info, now, seq=permit.seq)
        if status == 429:
            self._rate_limited(now, info, quota, permit)
            self._concurrency.move(now, "rate_limited", "HTTP 429")
        elif status is None:
            self._concurrency.move(now, "no_response", "no response (timeout or connection lost)")
        elif status >= 500:
            self._concurrency.move(now, "server_error", f"HTTP {status}")
        else:
            self._pause.answered()
            self._concurrency.observe(now, latency)
        if status != 429:
            self._learned.answered(self._key(permit), now)
        self._changed.set()

    def _key(self, permit: Permit | None) -> str | None:
        """The learned rate a response counts for: its credential's with a pool."""
        return permit.credential if self._pool is not None and permit is not None else None

    def _quota_of(self, permit: Permit | None) -> Quota:
        if self._pool is not None and permit is not None and permit.credential is not None:
            return self._pool.quota(permit.credential)
        return self._quota

    def _rate_limited(
        self, now: float, info: RateLimitInfo, quota: Quota, permit: Permit | None
    ) -> None:
        """A 429: the host waits for what the server asked, or backs off when it did not say."""
        if not info.has_quota and info.reset_after is None:
            self._learned.limited(self._key(permit), now)
        if info.retry_after is not None:
            self._pause.pause(now, info.retry_after, "HTTP 429 with Retry-After")
            return
        if info.reset_after is not None:
            # The window is spent whatever the count said: wait for its reset. With a
            # pool only this credential is spent; the others go on.
            quota.exhaust(now, info.reset_after)
            who = permit.credential if permit is not None and permit.credential else self.host
            log.info(
                "limiter.quota_spent",
                host=self.host,
                credential=who,
                reset_in=round(info.reset_after, 1),
            )
            return
        self._pause.back_off(now)


class HostLimiter:
    """The Limiter of a run: one slot per host, made on first use."""

    def __init__(
        self,
        config: LimiterConfig,
        *,
        pools: Mapping[str, CredentialPool] | None = None,
        lag: LagProbe = _no_lag,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._lag = lag
        self._pools = dict(pools or {})
        self._clock = clock
        self._slots: dict[str, _Slot] = {}

    def __repr__(self) -> str:
        return f"HostLimiter({self._config}, pools={sorted(self._pools)})"

    def slot(self, host: str) -> _Slot:
        """The slot of ``host`` (made on first use)."""
        slot = self._slots.get(host)
        if slot is None:
            slot = _Slot(host, self._config, self._lag, self._pools.get(host), self._clock)
            self._slots[host] = slot
        return slot

    async def acquire(self, host: str) -> Permit:
        """Wait until a request to ``host`` may start; the permit names its credential."""
        return await self.slot(host).acquire()

    def release(
        self,
        host: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
        latency: float,
        permit: Permit | None = None,
    ) -> None:
        """Learn from a response to ``host`` (status None: no response at all).

        Raises PauseTooLongError when the response asks for a pause over ``max_pause``.
        """
        self.slot(host).release(permit, status, headers, latency)

    def paused(self) -> Mapping[str, float]:
        """The hosts paused now, each with the monotonic time its pause ends."""
        now = self._clock()
        return {
            host: slot.paused_until for host, slot in self._slots.items() if slot.paused_until > now
        }

    def paused_seconds(self) -> float:
        """Seconds paused so far, summed over hosts (two hosts paused at once count twice)."""
        now = self._clock()
        return sum(slot.paused_seconds(now) for slot in self._slots.values())

    def learned_rates(self) -> Mapping[str, float]:
        """Requests/s learned from 429s: by host, or ``host/credential`` with a pool."""
        return {
            host if key is None else f"{host}/{key}": learned.rate
            for host, slot in self._slots.items()
            for key, learned in slot.learned.items()
            if learned.rate is not None
        }


def build_limiter(
    config: LimiterConfig,
    *,
    credential_hosts: Iterable[str],
    tokens: Sequence[str],
    lag: LagProbe,
) -> HostLimiter:
    """The run's limiter: ``config``'s pacing, one credential pool of ``tokens`` (if any)
    shared by the ``credential_hosts`` (those the source sends credentials to), and the
    event loop's ``lag`` probe."""
    pools: dict[str, CredentialPool] = {}
    if tokens:
        pool = CredentialPool(tokens)
        pools = {host: pool for host in credential_hosts if host}
    return HostLimiter(config, pools=pools, lag=lag)
