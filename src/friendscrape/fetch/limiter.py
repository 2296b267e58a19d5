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
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import structlog

from friendscrape.config import Settings
from friendscrape.errors import PauseTooLongError
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.http import Permit
from friendscrape.fetch.learned_rate import LearnedRate
from friendscrape.fetch.quota import Quota
from friendscrape.fetch.ratelimit_headers import RateLimitInfo, read_rate_limit

log = structlog.get_logger("friendscrape.fetch.limiter")

Outcome = Literal["ok", "rate_limited", "server_error", "no_response", "slow"]

LagProbe = Callable[[], float]
"""Seconds our own event loop runs late: part of every latency, but not the upstream's."""

START_CONCURRENCY: Final = 8
"""Adaptive slots start here (or at the cap, if lower) and grow from it."""

_QUIET_PAUSE: Final = 1.0
_BACKOFF_FIRST: Final = 1.0
_BACKOFF_MAX: Final = 60.0
_BACKOFF_DOUBLINGS: Final = math.ceil(math.log2(_BACKOFF_MAX / _BACKOFF_FIRST))
_LATENCY_ALPHA: Final = 0.2
_LATENCY_SAMPLES: Final = 10
_LATENCY_FACTOR: Final = 3.0
_LATENCY_FLOOR: Final = 0.25
_CUT: Final[Mapping[Outcome, float]] = {
    "rate_limited": 0.5,
    "server_error": 0.7,
    "no_response": 0.7,
    "slow": 0.8,
}


# Seconds between two events that report concurrency growing (cuts are always reported).
_GROWTH_LOG_EVERY = 30.0

# --concurrency's own default, read from Settings so the number is written once.
_DEFAULT_CONCURRENCY: Final[int] = Settings.model_fields["concurrency"].default


def adapt(limit: float, cap: int, outcome: Outcome, *, slow_start: bool) -> float:
    """The next concurrency of a host after one response (AIMD, as TCP and AutoThrottle).

    Healthy responses add: +1 each while in slow start (the limit doubles every round
    trip until the first sign of trouble, so a fast upstream is used fully within
    seconds), then +1 per ``limit`` responses, i.e. +1 per round trip: a slow probe for
    headroom that overshoots by at most one request. Trouble multiplies: a 429 halves
    (the upstream said plainly we are too fast), a 5xx or a lost response cuts by 30%
    (maybe overload, maybe noise), latency well above its baseline cuts by 20% (queues
    are building upstream before anything fails). Never below 1, never above ``cap``.
    """
    if outcome == "ok":
        step = 1.0 if slow_start else 1.0 / max(limit, 1.0)
        return min(limit + step, float(cap))
    return min(max(limit * _CUT[outcome], 1.0), float(cap))


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    """How hosts are paced: requests/s (None: unlimited), concurrency cap, adaptivity,
    and the longest pause an upstream may ask for before the run ends instead."""

    rate: float | None = None
    concurrency: int = _DEFAULT_CONCURRENCY
    adaptive: bool = True
    max_pause: float = 900.0
    learn_rate: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> LimiterConfig:
        """The pacing ``settings`` ask for; the host cap never exceeds --concurrency."""
        host = settings.host_concurrency or settings.concurrency
        return cls(
            settings.rate_limit,
            min(host, settings.concurrency),
            settings.adaptive,
            settings.max_pause,
            # Learning a rate from 429s is part of adapting: --no-adaptive turns both off.
            learn_rate=settings.adaptive and settings.learn_rate,
        )


def _no_lag() -> float:
    return 0.0


def _wall(monotonic_at: float) -> str:
    """A monotonic instant as a wall-clock ISO time, for people reading logs."""
    delta = timedelta(seconds=monotonic_at - time.monotonic())
    return (datetime.now(UTC) + delta).isoformat(timespec="seconds")


class _Slot:
    """One host's pacing state; see the module docstring."""

    def __init__(
        self,
        host: str,
        config: LimiterConfig,
        lag: LagProbe,
        pool: CredentialPool | None,
        clock: Callable[[], float],
    ) -> None:
        self.host = host
        self._config = config
        self._lag = lag
        self._pool = pool
        self._clock = clock
        self._quota = Quota()
        self._line = asyncio.Lock()
        self._changed = asyncio.Event()
        self.in_flight = 0
        self.limit = float(
            min(START_CONCURRENCY, config.concurrency) if config.adaptive else config.concurrency
        )
        self._slow_start = True
        self._cut_at = -math.inf
        self._logged_limit = int(self.limit)  # the limit the last limiter.concurrency said
        self._grow_logged_at = -math.inf
        self._latency: float | None = None
        self._baseline: float | None = None
        self._samples = 0
        self._tokens = max(config.rate or 0.0, 1.0)
        self._filled_at = clock()
        self.paused_until = 0.0
        self._pause_from = 0.0  # when the current (or last) pause began
        self._paused_before = 0.0  # seconds of the pauses that ended before it
        self._strikes = 0
        self._refused: float | None = None  # the pause over max_pause that ends the run
        # Rates learned from 429s without quota headers: the host's (key None), or with
        # a pool each token's, since the upstream counts each token apart.
        self.learned: dict[str | None, LearnedRate] = {}

    # -- acquiring --------------------------------------------------------------------

    async def acquire(self) -> Permit:
        async with self._line:
            while True:
                if self._refused is not None:
                    raise self._too_long(self._refused)
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
        if self.paused_until > now:
            return self.paused_until - now
        if self.in_flight >= max(int(self.limit), 1):
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
            self._pause(now, wait, "quota spent: waiting for the window to reset")
            return wait
        learned = self.learned.get(key)
        learned_wait = 0.0
        if learned is not None:
            if learned.settle(now):
                self._said(learned, key)
            learned_wait = learned.wait(now)
        return max(wait, self._bucket_wait(now), learned_wait)

    def _learned_of(self, key: str | None, now: float) -> LearnedRate:
        learned = self.learned.get(key)
        if learned is None:
            learned = self.learned[key] = LearnedRate(now, self)
        return learned

    def _bucket_wait(self, now: float) -> float:
        rate = self._config.rate
        if rate is None:
            return 0.0
        self._tokens = min(self._tokens + (now - self._filled_at) * rate, max(rate, 1.0))
        self._filled_at = now
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / rate

    def _start(self, now: float) -> Permit:
        self.in_flight += 1
        if self._config.rate is not None:
            self._tokens -= 1.0
        if self._pool is not None:
            credential, _ = self._pool.choose(now)
            seq = self._pool.quota(credential.fingerprint).take(now)
            if self._config.learn_rate:
                self._learned_of(credential.fingerprint, now).take(now)
            return Permit(headers=credential.headers(), credential=credential.fingerprint, seq=seq)
        if self._config.learn_rate:
            self._learned_of(None, now).take(now)
        return Permit(seq=self._quota.take(now))

    def _too_long(self, seconds: float) -> PauseTooLongError:
        msg = (
            f"{self.host} asked to pause {seconds:.0f} s (over the maximum of "
            f"{self._config.max_pause:g} s, FRIENDSCRAPE_MAX_PAUSE)"
        )
        return PauseTooLongError(msg, host=self.host, pause=seconds)

    def _pause(self, now: float, seconds: float, reason: str) -> None:
        # Headers carry whole seconds: the fraction is our clock's and the reset margin,
        # so an X window's full 900 s still fits a max_pause of 900.
        if math.floor(seconds) > self._config.max_pause:
            if self._refused is None:
                self._refused = seconds
                log.error(
                    "limiter.pause_too_long",
                    host=self.host,
                    seconds=round(seconds, 1),
                    max_pause=self._config.max_pause,
                    reason=reason,
                )
            # Wake the line: every coroutine waiting on this host raises the same error.
            self._changed.set()
            raise self._too_long(seconds)
        until = now + seconds
        if self.paused_until <= now:
            # A new pause: the last one is over and counted whole.
            self._paused_before += self.paused_until - self._pause_from
            self._pause_from = now
        if until <= self.paused_until + 0.5:
            self.paused_until = max(self.paused_until, until)
            return
        self.paused_until = until
        if seconds < _QUIET_PAUSE:
            return  # the end of a window reached while pacing: routine, not news
        log.warning(
            "limiter.paused",
            host=self.host,
            seconds=round(seconds, 1),
            until=_wall(until),
            reason=reason,
        )

    def paused_seconds(self, now: float) -> float:
        """Seconds this host has spent paused so far (a pause under way counts to ``now``)."""
        current = max(min(now, self.paused_until) - self._pause_from, 0.0)
        return self._paused_before + current

    # -- learning ---------------------------------------------------------------------

    def release(
        self, permit: Permit | None, status: int | None, headers: Mapping[str, str], latency: float
    ) -> None:
        now = self._clock()
        self.in_flight = max(self.in_flight - 1, 0)
        info = read_rate_limit(headers) if headers else RateLimitInfo()
        quota = self._quota_of(permit)
        if permit is not None and permit.seq >= 0:
            quota.learn(info, now, seq=permit.seq)
        if status == 429:
            self._rate_limited(now, info, quota, permit)
            self._adapt(now, "rate_limited", "HTTP 429")
        elif status is None:
            self._adapt(now, "no_response", "no response (timeout or connection lost)")
        elif status >= 500:
            self._adapt(now, "server_error", f"HTTP {status}")
        else:
            self._strikes = 0
            self._observe(now, latency)
        if status != 429 and self._config.learn_rate:
            key = permit.credential if self._pool is not None and permit is not None else None
            self._learned_of(key, now).answered(now)
        self._changed.set()

    def _quota_of(self, permit: Permit | None) -> Quota:
        if self._pool is not None and permit is not None and permit.credential is not None:
            return self._pool.quota(permit.credential)
        return self._quota

    def _rate_limited(
        self, now: float, info: RateLimitInfo, quota: Quota, permit: Permit | None
    ) -> None:
        """A 429: the host waits for what the server asked, or backs off when it did not say."""
        if not info.has_quota and info.reset_after is None and self._config.learn_rate:
            self._learn(now, permit)
        if info.retry_after is not None:
            self._pause(now, info.retry_after, "HTTP 429 with Retry-After")
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
        self._strikes += 1
        # The exponent stops growing once the cap is reached: after ~1000 strikes in a
        # row 2**strikes would no longer convert to a float (OverflowError).
        doublings = min(self._strikes - 1, _BACKOFF_DOUBLINGS)
        backoff = min(_BACKOFF_FIRST * 2**doublings, _BACKOFF_MAX)
        self._pause(now, backoff, "HTTP 429 without a reset time: backing off")

    def _learn(self, now: float, permit: Permit | None) -> None:
        """A 429 that told no quota: cut the rate learned for the host (or the token)."""
        key = permit.credential if self._pool is not None and permit is not None else None
        learned = self._learned_of(key, now)
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
                host=self.host,
                credential=key,
                cuts=learned.cuts,
                reason=f"{reason}: not a rate limit; requests go unpaced again and no "
                "rate is learned for this host",
            )
            return
        log.info(
            "limiter.rate_learned",
            host=self.host,
            credential=key,
            rate=round(learned.rate or 0.0, 1),
            cuts=learned.cuts,
        )

    def _observe(self, now: float, latency: float) -> None:
        """A healthy response: grow, unless latency says queues are building upstream."""
        # Time the response sat waiting for our own busy event loop is not the upstream's:
        # counting it would read a saturated collector as a slow upstream and cut.
        latency = max(latency - self._lag(), 0.0)
        self._samples += 1
        ewma = latency if self._latency is None else self._latency
        ewma += _LATENCY_ALPHA * (latency - ewma)
        self._latency = ewma
        # The baseline is the low end of what we see, drifting up slowly so one lucky
        # early sample does not make every later latency look like a climb.
        base = latency if self._baseline is None else self._baseline
        self._baseline = min(latency, base + 0.01 * (ewma - base))
        if (
            self._samples >= _LATENCY_SAMPLES
            and ewma > _LATENCY_FACTOR * self._baseline
            and ewma - self._baseline > _LATENCY_FLOOR
        ):
            self._adapt(now, "slow", f"latency {ewma:.2f}s, baseline {self._baseline:.2f}s")
        else:
            self._adapt(now, "ok", "healthy responses")

    def _adapt(self, now: float, outcome: Outcome, reason: str) -> None:
        if not self._config.adaptive:
            return
        if outcome != "ok":
            # One cut per round trip: the responses already in flight when trouble
            # started report the same trouble and must not cut again.
            if now - self._cut_at < (self._latency or 0.0) + 0.05:
                return
            self._cut_at = now
            self._slow_start = False
        old = self.limit
        self.limit = adapt(old, self._config.concurrency, outcome, slow_start=self._slow_start)
        new = int(self.limit)
        if new == int(old):
            return
        if new > int(old):
            # Growth comes one step per response (hundreds a second in slow start): say
            # it at most every _GROWTH_LOG_EVERY seconds, and on reaching the cap, each
            # event spanning every step since the last one. Cuts are said each time.
            reached_cap = new >= self._config.concurrency
            if not reached_cap and now - self._grow_logged_at < _GROWTH_LOG_EVERY:
                return
            self._grow_logged_at = now
        log.info(
            "limiter.concurrency",
            host=self.host,
            old=self._logged_limit if new > int(old) else int(old),
            new=new,
            reason=reason,
        )
        self._logged_limit = new


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
