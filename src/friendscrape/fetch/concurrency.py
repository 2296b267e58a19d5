"""How many requests one host may have in flight: a limit that grows with healthy
responses and is cut by trouble (AIMD, as TCP and scrapy's AutoThrottle), including
latency climbing well above its baseline before anything fails."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final, Literal

import structlog

# The limiter's events, under the limiter's name wherever the code deciding them lives.
log = structlog.get_logger("friendscrape.fetch.limiter")

Outcome = Literal["ok", "rate_limited", "server_error", "no_response", "slow"]

LagProbe = Callable[[], float]
"""Seconds our own event loop runs late: part of every latency, but not the upstream's."""

START_CONCURRENCY: Final = 8
"""Adaptive slots start here (or at the cap, if lower) and grow from it."""

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


class Concurrency:
    """The requests in flight to one host and their limit: fixed at ``cap``, or (when
    ``adaptive``) starting at START_CONCURRENCY and moved by ``adapt`` after each response."""

    def __init__(self, host: str, cap: int, *, adaptive: bool, lag: LagProbe) -> None:
        self._host = host
        self._cap = cap
        self._adaptive = adaptive
        self._lag = lag
        self.in_flight = 0
        self.limit = float(min(START_CONCURRENCY, cap) if adaptive else cap)
        self._slow_start = True
        self._cut_at = -math.inf
        self._logged_limit = int(self.limit)  # the limit the last limiter.concurrency said
        self._grow_logged_at = -math.inf
        self._latency: float | None = None
        self._baseline: float | None = None
        self._samples = 0

    @property
    def full(self) -> bool:
        """Whether another request must wait for one in flight to come back."""
        return self.in_flight >= max(int(self.limit), 1)

    def started(self) -> None:
        """A request to the host has started."""
        self.in_flight += 1

    def ended(self) -> None:
        """A request to the host has come back (or given up)."""
        self.in_flight = max(self.in_flight - 1, 0)

    def observe(self, now: float, latency: float) -> None:
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
            self.move(now, "slow", f"latency {ewma:.2f}s, baseline {self._baseline:.2f}s")
        else:
            self.move(now, "ok", "healthy responses")

    def move(self, now: float, outcome: Outcome, reason: str) -> None:
        """Move the limit after a response whose ``outcome`` is known (when adaptive)."""
        if not self._adaptive:
            return
        if outcome != "ok":
            # One cut per round trip: the responses already in flight when trouble
            # started report the same trouble and must not cut again.
            if now - self._cut_at < (self._latency or 0.0) + 0.05:
                return
            self._cut_at = now
            self._slow_start = False
        old = self.limit
        self.limit = adapt(old, self._cap, outcome, slow_start=self._slow_start)
        new = int(self.limit)
        if new == int(old):
            return
        if new > int(old):
            # Growth comes one step per response (hundreds a second in slow start): say
            # it at most every _GROWTH_LOG_EVERY seconds, and on reaching the cap, each
            # event spanning every step since the last one. Cuts are said each time.
            reached_cap = new >= self._cap
            if not reached_cap and now - self._grow_logged_at < _GROWTH_LOG_EVERY:
                return
            self._grow_logged_at = now
        log.info(
            "limiter.concurrency",
            host=self._host,
            old=self._logged_limit if new > int(old) else int(old),
            new=new,
            reason=reason,
        )
        self._logged_limit = new
