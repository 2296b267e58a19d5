"""A host's pause: until when every request to it waits (a 429, a spent quota window,
backing off), how long it has waited so far, and whether a pause is too long to wait out.

A pause longer than ``max_pause`` is not waited out: it raises PauseTooLongError, and so
does every later ``check``, so the run ends at once with its unfinished users left
pending for a later restart instead of sleeping for hours with nothing to save.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from friendscrape.errors import PauseTooLongError

# The limiter's events, under the limiter's name wherever the code deciding them lives.
log = structlog.get_logger("friendscrape.fetch.limiter")

_QUIET_PAUSE: Final = 1.0
_BACKOFF_FIRST: Final = 1.0
_BACKOFF_MAX: Final = 60.0
_BACKOFF_DOUBLINGS: Final = math.ceil(math.log2(_BACKOFF_MAX / _BACKOFF_FIRST))


def _wall(monotonic_at: float) -> str:
    """A monotonic instant as a wall-clock ISO time, for people reading logs."""
    delta = timedelta(seconds=monotonic_at - time.monotonic())
    return (datetime.now(UTC) + delta).isoformat(timespec="seconds")


class HostPause:
    """The pause of one host; ``wake`` wakes the requests waiting on it when a pause over
    ``max_pause`` ends the run, so each raises the same error."""

    def __init__(self, host: str, max_pause: float, wake: Callable[[], None]) -> None:
        self.host = host
        self._max_pause = max_pause
        self._wake = wake
        self.paused_until = 0.0
        self._pause_from = 0.0  # when the current (or last) pause began
        self._paused_before = 0.0  # seconds of the pauses that ended before it
        self._strikes = 0  # 429s in a row that said no reset time
        self._refused: float | None = None  # the pause over max_pause that ends the run

    def check(self) -> None:
        """Raise PauseTooLongError once a pause over ``max_pause`` was asked for."""
        if self._refused is not None:
            raise self._too_long(self._refused)

    def _too_long(self, seconds: float) -> PauseTooLongError:
        msg = (
            f"{self.host} asked to pause {seconds:.0f} s (over the maximum of "
            f"{self._max_pause:g} s, FRIENDSCRAPE_MAX_PAUSE)"
        )
        return PauseTooLongError(msg, host=self.host, pause=seconds)

    def pause(self, now: float, seconds: float, reason: str) -> None:
        """Pause the host ``seconds`` from ``now`` (a shorter pause under way is extended,
        a longer one kept); PauseTooLongError when ``seconds`` is over ``max_pause``."""
        # Headers carry whole seconds: the fraction is our clock's and the reset margin,
        # so an X window's full 900 s still fits a max_pause of 900.
        if math.floor(seconds) > self._max_pause:
            if self._refused is None:
                self._refused = seconds
                log.error(
                    "limiter.pause_too_long",
                    host=self.host,
                    seconds=round(seconds, 1),
                    max_pause=self._max_pause,
                    reason=reason,
                )
            # Wake the line: every coroutine waiting on this host raises the same error.
            self._wake()
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

    def back_off(self, now: float) -> None:
        """A 429 that said neither how long to wait nor when its window resets: pause
        1 s, doubling with each such 429 in a row up to a minute."""
        self._strikes += 1
        # The exponent stops growing once the cap is reached: after ~1000 strikes in a
        # row 2**strikes would no longer convert to a float (OverflowError).
        doublings = min(self._strikes - 1, _BACKOFF_DOUBLINGS)
        backoff = min(_BACKOFF_FIRST * 2**doublings, _BACKOFF_MAX)
        self.pause(now, backoff, "HTTP 429 without a reset time: backing off")

    def answered(self) -> None:
        """A response that was neither a 429 nor a failure: backing off starts over."""
        self._strikes = 0

    def paused_seconds(self, now: float) -> float:
        """Seconds this host has spent paused so far (a pause under way counts to ``now``)."""
        current = max(min(now, self.paused_until) - self._pause_from, 0.0)
        return self._paused_before + current
