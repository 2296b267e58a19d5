"""The fixed pace a user may set (--rate-limit): at most ``rate`` requests a second to one
host, as a token bucket holding up to ``max(rate, 1)`` tokens."""

from __future__ import annotations


class TokenBucket:
    """One host's bucket; ``rate`` None lets every request through at once."""

    def __init__(self, rate: float | None, now: float) -> None:
        self._rate = rate
        self._tokens = max(rate or 0.0, 1.0)
        self._filled_at = now

    def wait(self, now: float) -> float:
        """Seconds until the bucket holds a token (0: one is there now)."""
        rate = self._rate
        if rate is None:
            return 0.0
        self._tokens = min(self._tokens + (now - self._filled_at) * rate, max(rate, 1.0))
        self._filled_at = now
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / rate

    def take(self) -> None:
        """A request starts: it spends a token."""
        if self._rate is not None:
            self._tokens -= 1.0
