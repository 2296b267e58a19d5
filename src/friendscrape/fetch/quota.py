"""One upstream quota window (a host's, or one credential's) as the responses report it.

The window is tracked locally between responses: each request started takes one from
``remaining``, so concurrent requests cannot overspend what the last response allowed.
Requests are spread over what is left of the window (``remaining`` over the seconds to
its reset) rather than spent in one burst: against a fixed window this uses the whole
quota, and against a token bucket (whose reset is when it is full again) it settles at
the bucket's refill rate, since spending faster than the refill shortens the spacing
only until ``remaining`` falls, and spending slower lets it rise. The first request on
a window goes alone: until its answer, we cannot know whether a burst would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from friendscrape.fetch.ratelimit_headers import RateLimitInfo

RESET_MARGIN: Final = 0.05
"""Seconds added after a reported reset: the server's window must have rolled over."""


@dataclass(slots=True)
class Quota:
    """Remaining requests and reset time of one window; times are ``time.monotonic()``."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    next_at: float = 0.0
    taken: int = 0
    learned: int = -1
    answered: int = 0

    def roll(self, now: float) -> None:
        """Past the reset, the window is full again (as far as we know until told)."""
        if self.reset_at is not None and now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = None
            self.next_at = min(self.next_at, now)

    def spent(self, now: float) -> bool:
        """Whether this window has nothing left before its reset."""
        self.roll(now)
        return self.remaining is not None and self.remaining <= 0 and self.reset_at is not None

    def wait(self, now: float) -> float:
        """Seconds until a request may start on this window (0: now; inf: until the
        first response is back, since until then nothing is known of the window)."""
        if self.answered == 0 and self.taken > 0:
            return math.inf
        if self.spent(now):
            assert self.reset_at is not None  # noqa: S101 - spent() implies a reset time
            return self.reset_at - now
        return max(self.next_at - now, 0.0)

    def take(self, now: float) -> int:
        """A request starts on this window; returns its sequence number for ``learn``."""
        self.roll(now)
        seq = self.taken
        self.taken += 1
        if self.remaining is None:
            return seq
        if self.reset_at is not None and self.remaining > 0:
            # Spread what is left evenly over what is left of the window.
            self.next_at = now + (self.reset_at - now) / self.remaining
        self.remaining -= 1
        return seq

    def learn(self, info: RateLimitInfo, now: float, *, seq: int) -> None:
        """Update from the headers of the response to request ``seq`` (from ``take``)."""
        self.answered += 1
        if info.limit is not None:
            self.limit = info.limit
        if info.remaining is None or seq < self.learned:
            # Responses arrive out of order: an older one knows less than what we have.
            return
        self.learned = seq
        # Requests started after this one may not have been counted by the server yet.
        self.remaining = max(info.remaining - (self.taken - 1 - seq), 0)
        if info.reset_after is not None:
            self.reset_at = now + info.reset_after + RESET_MARGIN
        elif self.remaining > 0:
            self.reset_at = None

    def exhaust(self, now: float, reset_after: float) -> None:
        """The server refused a request on this window until ``reset_after`` seconds."""
        self.remaining = 0
        self.reset_at = now + reset_after + RESET_MARGIN
