"""A request rate learned from HTTP 429s alone, for upstreams that send no quota headers.

Many upstreams enforce a request rate but say nothing of it until they refuse: a 429
with ``Retry-After: 1`` and no count or reset. Pausing after each 429 is not enough
there: the pace that caused it resumes after the pause and trips the limit again, each
time losing a pause's worth of requests. So the limiter keeps, per host (and per token
when a pool of tokens is used: the upstream counts each token apart), a rate it paces
to, learned as TCP's congestion control learns a window:

- nothing is known until the first 429: no pacing beyond the concurrency;
- the first 429 is held until the host's pause ends, while the answers to the requests
  in flight with it come back: a limit reached refuses those too (the upstream's bucket
  is empty), a random 429 does not. Under ``ECHO`` of them refused (or under
  ``ECHO_OVER`` times the share of 429s so far), the 429 came alone and teaches nothing
  (``UNTOLD`` such in a row: learning is given up for the host);
- a 429 cuts the rate to ``CUT`` times the pace the upstream let through: the answers
  other than 429 per second the host was not paused (a pause it was asked for is not
  the upstream letting less through), over the last second (counted over at least a
  second, so the burst an upstream's bucket allows after a quiet spell is not read as
  its rate). At most once per ``COOLDOWN`` seconds: the requests in flight when the
  limit was reached all come back refused together and tell one thing;
- every second without a 429 adds ``SLOW_PROBE`` of the rate to it, so the next 429
  comes late and the rate spends most of its time just under the limit. A 429 in the
  first second of a host tells no pace (an upstream's bucket starts full and a burst
  passes): until the next 429 the rate then grows by ``FAST_PROBE`` a second.

An upstream whose 429s come whatever the pace (random refusals, a flaky proxy) would
cut the rate to nothing, each cut from a pace the previous cut had already lowered. A
429 that tells of a rate comes once the rate has climbed back past what the upstream let
through: after a cut the rate is below the pace let through, and the slow probe takes
about 16 s to climb back to it, so a limit stays quiet meanwhile. Random 429s keep their
share whatever the rate, so they keep coming right after a cut. Such a 429, one that
comes while the rate is still under ``QUICK`` of the pace let through at the last cut
(and after that cut's cooldown), is a doubt; one that comes past it clears a doubt. At
``DOUBTS`` doubts the 429s are deemed not to be about the pace: the host's rate is
forgotten (requests go unpaced again, as before the first 429) and not learned again
for the run; pauses and the adaptive concurrency remain. Random 429s frequent enough to
matter are told within a few cuts; rarer ones cost a cut each that the probe wins back.
An upstream limiting under about two requests a second may look the same, and is then
served by the pauses alone.

Each request costs O(1) arithmetic here: a token bucket and a one-second counter.
"""

from __future__ import annotations

import math
from typing import Final, Protocol

CUT: Final = 0.85
"""The share of the pace let through that a 429 leaves."""
COOLDOWN: Final = 1.5
"""Seconds after a cut during which further 429s do not cut again."""
FAST_PROBE: Final = 0.10
"""Growth per second (a share of the rate) while no 429 has told a pace yet."""
SLOW_PROBE: Final = 0.01
"""Growth per second (a share of the rate) once one has."""
MIN_RATE: Final = 0.2
"""Requests/s the rate never goes below (one request each five seconds)."""
MIN_ANSWERS: Final = 10
"""Answers a host must have given before a 429 may set its first rate: fewer tell no pace."""
QUICK: Final = 0.90
"""A 429 while the rate is under this share of the pace let through at the last cut is
not explained by the pace: a doubt."""
DOUBTS: Final = 3
"""Doubts (less one for each 429 that the pace explains) at which learning is given up."""
ECHO: Final = 0.10
"""Share of the answers to requests in flight at a host's first 429 (those that come back
while the host pauses) that must be 429s too for it to tell of a rate..."""
ECHO_OVER: Final = 3.0
"""...and at least this many times the share of 429s among the host's answers before it
(429s that came in a pause counted with the one that began it)."""
UNTOLD: Final = 3
"""First 429s in a row that come alone (see ``ECHO``) at which learning is given up."""
BURST: Final = 0.05
"""Bucket size as a share of the rate (at least one request): pacing stays smooth."""


class Pauses(Protocol):
    """The pauses of the host a rate is learned for (the limiter's slot)."""

    @property
    def paused_until(self) -> float:
        """When the host's current (or last) pause ends."""

    def paused_seconds(self, now: float) -> float:
        """Seconds the host has spent paused by ``now``."""


class LearnedRate:
    """The rate of one host (or one token of it); see the module docstring."""

    def __init__(self, now: float, pauses: Pauses) -> None:
        # The pace counts answers per second the host was not paused, so a pause that a
        # 429 asked for does not read as an upstream letting less through.
        self._pauses = pauses
        self.rate: float | None = None
        self._fast = True  # no 429 has told a pace yet
        self._tokens = 1.0
        self._at = now  # when tokens and growth were last brought up to date
        self._cut_at = -math.inf
        self._born = now
        self._window_at = now
        self._window_paused = pauses.paused_seconds(now)  # paused seconds by its start
        self._window_count = 0
        self._answers = 0
        self._last_pace = 0.0
        # The pace let through at the last cut (None after a cut in the first second: a
        # burst from an upstream's full bucket tells no pace to hold the rate to).
        self._good: float | None = None
        # A host's first 429, held until the host's pause ends: (when, the pace then,
        # the share of 429s until then); and the 429s and answers that come back
        # meanwhile from requests already in flight.
        self._held: tuple[float, float, float] | None = None
        self._echo_refused = 0
        self._echo_answered = 0
        self._episodes = 0  # 429s that came while the host was not paused
        self.untold = 0  # first 429s in a row that came alone
        self.cuts = 0
        self.doubts = 0
        self.given_up = False

    def wait(self, now: float) -> float:
        """Seconds until a request may start (0: now)."""
        rate = self.rate
        if rate is None:
            return 0.0
        rate = self._grow(now, rate)
        # Within rounding of a whole token is a token: a wait of 1e-13 s would not
        # move a clock forward.
        return 0.0 if self._tokens >= 1.0 - 1e-9 else (1.0 - self._tokens) / rate

    def _grow(self, now: float, rate: float) -> float:
        """Bring the probe's growth and the bucket's tokens up to ``now``."""
        elapsed = max(now - self._at, 0.0)
        self._at = now
        rate += rate * (FAST_PROBE if self._fast else SLOW_PROBE) * elapsed
        self.rate = rate
        self._tokens = min(self._tokens + elapsed * rate, max(rate * BURST, 1.0))
        return rate

    def take(self, now: float) -> None:
        """A request starts now."""
        if self.rate is not None:
            self._tokens -= 1.0

    def _unpaused(self, now: float) -> float:
        """Seconds of the current window during which the host was not paused."""
        return (now - self._window_at) - (self._pauses.paused_seconds(now) - self._window_paused)

    def answered(self, now: float) -> None:
        """A request was answered, not with a 429: the upstream let it through."""
        if self._held is not None:
            self._echo_answered += 1
        unpaused = self._unpaused(now)
        if unpaused >= 1.0:
            self._last_pace = self._window_count / unpaused
            self._window_at, self._window_count = now, 0
            self._window_paused = self._pauses.paused_seconds(now)
        self._window_count += 1
        self._answers += 1

    def pace(self, now: float) -> float:
        """Answers/s the upstream let through lately, per second not paused: the last
        full second's, or the current one's if higher (counted over at least a second)."""
        current = self._window_count / max(self._unpaused(now), 1.0)
        return max(self._last_pace, current)

    def settle(self, now: float) -> bool:
        """Judge a held first 429 once the host's pause is over; True when that set a
        rate (the caller says so), or gave learning up."""
        held = self._held
        if held is None or now < max(held[0], self._pauses.paused_until):
            return False
        self._held = None
        refused, echoes = self._echo_refused, self._echo_refused + self._echo_answered
        if echoes and refused < echoes * max(ECHO, ECHO_OVER * held[2]):
            # The requests in flight mostly got through: a limit reached would have
            # refused them too (the upstream's bucket was empty), random 429s would not.
            self.untold += 1
            if self.untold >= UNTOLD:
                self.given_up = True
                return True
            return False
        self._cut(held[0], held[1])
        self._at = now  # paced from now: the host was paused until now
        return True

    def limited(self, now: float) -> bool:
        """A 429 came back; True when it cut the rate (once per cooldown) or gave
        learning up."""
        if self.given_up:
            return False
        if now >= self._pauses.paused_until:
            self._episodes += 1  # 429s already in flight at a pause tell the same
        if self._held is not None:
            if now < max(self._held[0], self._pauses.paused_until):
                self._echo_refused += 1  # an answer to a request in flight: an echo
                return False
            if self.settle(now):
                return True
        if now - self._cut_at < COOLDOWN:
            return False
        if self.rate is None:
            if self._answers < MIN_ANSWERS:
                return False  # too few answers to tell a pace: the pause alone must do
            # Judged once the requests in flight have come back (the host pauses
            # meanwhile, so holding the cut costs nothing).
            share = self._episodes / (self._episodes + self._answers)
            self._held = (now, self.pace(now), share)
            self._echo_refused = self._echo_answered = 0
            return False
        if self._good is not None:
            # Does the pace explain this 429? Not while the rate is still well under
            # what the upstream let through before the last cut.
            if self._grow(now, self.rate) < self._good * QUICK:
                self.doubts += 1
            else:
                self.doubts = max(self.doubts - 1, 0)
            if self.doubts >= DOUBTS:
                self.given_up = True
                self.rate = None
                return True
        self._cut(now, self.pace(now))
        return True

    def _cut(self, now: float, pace: float) -> None:
        """Cut the rate to ``CUT`` of ``pace`` (or of the rate, if lower)."""
        pace = max(pace, MIN_RATE)
        base = pace if self.rate is None else min(self.rate, pace)
        probing_fast = self._fast
        self._fast = now - self._born < 1.0
        # A cut in the first second, or one that ends a fast probe (which overshoots by
        # design), may leave the rate over a limit still: the next 429 tells nothing.
        self._good = None if self._fast or probing_fast else pace
        self.rate = max(base * CUT, MIN_RATE)
        self._tokens = min(self._tokens, 1.0)
        self._at = now
        self._cut_at = now
        self.cuts += 1
