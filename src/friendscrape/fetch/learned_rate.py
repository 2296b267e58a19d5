"""A request rate learned from HTTP 429s alone, for upstreams that send no quota headers.

Many upstreams enforce a request rate but say nothing of it until they refuse: a 429
with ``Retry-After: 1`` and no count or reset. Pausing after each 429 is not enough
there: the pace that caused it resumes after the pause and trips the limit again, each
time losing a pause's worth of requests. So the limiter keeps, per host (and per token
when a pool of tokens is used: the upstream counts each token apart), a rate it paces
to, learned as TCP's congestion control learns a window:

- nothing is known until the first 429: no pacing beyond the concurrency;
- a 429 cuts the rate to ``CUT`` times the pace the upstream let through: the answers
  other than 429 over the last second (counted over at least a second, so the burst an
  upstream's bucket allows after a quiet spell is not read as its rate). At most once
  per ``COOLDOWN`` seconds: the requests in flight when the limit was reached all come
  back refused together and tell one thing;
- every second without a 429 adds ``SLOW_PROBE`` of the rate to it, so the next 429
  comes late and the rate spends most of its time just under the limit. A 429 in the
  first second of a host tells no pace (an upstream's bucket starts full and a burst
  passes): until the next 429 the rate then grows by ``FAST_PROBE`` a second.

An upstream whose 429s come whatever the pace (random refusals, a flaky proxy) would
cut the rate to nothing. Such 429s never let a cut hold: below a real limit the slow
probe takes about 16 s to climb back to it, so cuts come many answers apart, while
random 429s come soon after a cut whatever the rate. When the last ``GIVE_UP`` cuts
came less than ``HOLD`` seconds or fewer than ``HOLD_ANSWERS`` answers apart on
average, the host is deemed not to limit by pace, and its rate is forgotten for good
(pauses and the adaptive concurrency remain). Answers as well as seconds: once the rate
has fallen, random 429s are seconds apart but still only a few answers; and an average
over several cuts is not reset by one long gap, as a count of cuts in a row would be.
An upstream limiting under about two requests a second looks the same, and
is then served by the pauses alone.

Each request costs O(1) arithmetic here: a token bucket and a one-second counter.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

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
GIVE_UP: Final = 8
"""Cuts over which the answers between cuts are averaged to tell random 429s."""
HOLD: Final = 10.0
"""Seconds between cuts, on average, below which 429s are deemed random."""
HOLD_ANSWERS: Final = 30
"""Answers (not 429) between cuts, on average, below which 429s are deemed random."""
BURST: Final = 0.05
"""Bucket size as a share of the rate (at least one request): pacing stays smooth."""


class LearnedRate:
    """The rate of one host (or one token of it); see the module docstring."""

    def __init__(self, now: float) -> None:
        self.rate: float | None = None
        self._fast = True  # no 429 has told a pace yet
        self._tokens = 1.0
        self._at = now  # when tokens and growth were last brought up to date
        self._cut_at = -math.inf
        self._born = now
        self._window_at = now
        self._window_count = 0
        self._answers = 0
        # (time, answers) at each of the last cuts: how far apart they came.
        self._marks: deque[tuple[float, int]] = deque(maxlen=GIVE_UP + 1)
        self._last_pace = 0.0
        self.cuts = 0
        self.given_up = False

    def wait(self, now: float) -> float:
        """Seconds until a request may start (0: now)."""
        rate = self.rate
        if rate is None:
            return 0.0
        elapsed = max(now - self._at, 0.0)
        self._at = now
        rate += rate * (FAST_PROBE if self._fast else SLOW_PROBE) * elapsed
        self.rate = rate
        self._tokens = min(self._tokens + elapsed * rate, max(rate * BURST, 1.0))
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / rate

    def take(self, now: float) -> None:
        """A request starts now."""
        if self.rate is not None:
            self._tokens -= 1.0

    def answered(self, now: float) -> None:
        """A request was answered, not with a 429: the upstream let it through."""
        if now - self._window_at >= 1.0:
            self._last_pace = self._window_count / (now - self._window_at)
            self._window_at, self._window_count = now, 0
        self._window_count += 1
        self._answers += 1

    def pace(self, now: float) -> float:
        """Answers/s the upstream let through lately: the last full second's, or the
        current one's if higher (counted over at least a second)."""
        current = self._window_count / max(now - self._window_at, 1.0)
        return max(self._last_pace, current)

    def limited(self, now: float) -> bool:
        """A 429 came back; True when it cut the rate (once per cooldown)."""
        if self.given_up or now - self._cut_at < COOLDOWN:
            return False
        marks = self._marks
        if len(marks) == marks.maxlen and (
            now - marks[0][0] < HOLD * GIVE_UP
            or self._answers - marks[0][1] < HOLD_ANSWERS * GIVE_UP
        ):
            self.given_up = True
            self.rate = None
            return True
        pace = self.pace(now)
        if self.rate is None and self._answers < MIN_ANSWERS:
            return False  # too few answers to tell a pace: the pause alone must do
        pace = max(pace, MIN_RATE)
        base = pace if self.rate is None else min(self.rate, pace)
        self._fast = now - self._born < 1.0
        self.rate = max(base * CUT, MIN_RATE)
        self._tokens = min(self._tokens, 1.0)
        self._at = now
        self._cut_at = now
        self._marks.append((now, self._answers))
        self.cuts += 1
        return True
