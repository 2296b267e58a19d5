"""The event loop's lag: measured by the run's lag task, read by its limiter as a probe."""

from __future__ import annotations

from typing import Final

SMOOTHING: Final = 0.3
"""Weight of the newest measurement."""


class LoopLag:
    """How late the event loop runs ready callbacks, in seconds, smoothed.

    On a busy core every response waits this long before it is read, which is not the
    upstream's delay: the limiter subtracts it from each latency through ``seconds``, a
    probe handed to it explicitly, so no counters object carries a control signal.
    """

    __slots__ = ("_seconds",)

    def __init__(self) -> None:
        self._seconds = 0.0

    def seconds(self) -> float:
        """The current lag (0.0 until the first measurement)."""
        return self._seconds

    def observe(self, late: float) -> None:
        """Fold in one measurement: how much later than asked a sleep woke up."""
        self._seconds += SMOOTHING * (late - self._seconds)
