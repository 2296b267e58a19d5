"""Reading the waits servers ask for: Retry-After as seconds or as an HTTP date, bounded.

Every wait read from a header goes through ``bounded_wait``: a hostile or buggy upstream
can send any text, and what comes out is either None (nothing readable: garbage, NaN,
infinity) or a finite number of seconds from 0 to ``LONGEST_WAIT``. Nothing downstream
(the limiter's pause, its log lines, ``asyncio.timeout``) then has to guard against
overflow or a pause that never ends.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

LONGEST_WAIT: Final = 10 * 365 * 86400.0
"""Ten years: a longer wait reads as this. Far over any sane maximum pause, so the run
still ends (PauseTooLongError), but every later sum of times stays a small float."""


def bounded_wait(seconds: float) -> float | None:
    """``seconds`` as a wait: None if not finite, 0 if past, at most ``LONGEST_WAIT``."""
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), LONGEST_WAIT)


def parse_http_date(text: str) -> datetime | None:
    """An HTTP date (or any RFC 2822 date) as an aware datetime, or None if unreadable."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def wait_until(when: datetime, now: datetime) -> float | None:
    """Seconds from ``now`` to ``when`` as a bounded wait (see ``bounded_wait``)."""
    try:
        return bounded_wait((when - now).total_seconds())
    except OverflowError:  # dates near year 1 or 9999 with opposite offsets
        return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    # RFC 9110's delta-seconds is ASCII digits only; str.isdigit alone would also take
    # digits such as "²" that float() refuses.
    if text.isascii() and text.isdigit():
        # Hundreds of digits make float() infinite: that is a very long wait, not garbage.
        return min(float(text), LONGEST_WAIT)
    when = parse_http_date(text)
    if when is None:
        return None
    return wait_until(when, now if now is not None else datetime.now(UTC))
