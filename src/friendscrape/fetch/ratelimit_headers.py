"""Reading the rate-limit headers upstreams send, as pure functions of headers and a clock.

Honoured, by platform (header names are matched lower-cased):

- every platform: ``Retry-After`` (delta-seconds or an HTTP date, RFC 9110 section 10.2.3);
- X API v2 and the v1.1 API: ``x-rate-limit-limit``, ``x-rate-limit-remaining``,
  ``x-rate-limit-reset`` (the window's end as epoch seconds);
- Bluesky and the IETF draft (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit``,
  ``RateLimit-Remaining``, ``RateLimit-Reset``. Bluesky sends the reset as epoch seconds,
  the draft as delta-seconds; a number past 10^9 (September 2001 as an epoch, or 31
  years as a delta) can only be an epoch, anything smaller is a delta. The draft's
  combined ``RateLimit: limit=10, remaining=5, reset=30`` (and its later
  ``"policy";r=5;t=30`` form) is read too;
- Mastodon (and GitHub): ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``,
  ``X-RateLimit-Reset`` (Mastodon: an ISO 8601 time; GitHub: epoch seconds).

An absolute reset is measured against the server's clock when its ``Date`` header
disagrees with ours by more than a few seconds, so a skewed local clock neither pauses
too long nor wakes up early into a wall of 429s.

Hostile values never raise and never come out unbounded: every wait is None (garbage,
NaN, infinity, a negative delta) or 0 to ten years (``retry_after.bounded_wait``), every
count None or 0 to 2^31. One known upstream bug is read as meant: an epoch reset in
*milliseconds*. An epoch more than ten years ahead whose value divided by 1000 is a time
between 2001 and ten years ahead is read as milliseconds (today's epoch in milliseconds,
about 1.8e12, would otherwise say "wait 57,000 years"); any other epoch that far ahead
reads as ten years, which is over any maximum pause, so the run ends instead of waiting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from friendscrape.fetch.retry_after import (
    LONGEST_WAIT,
    bounded_wait,
    parse_http_date,
    parse_retry_after,
    wait_until,
)

_EPOCH_THRESHOLD: Final = 1_000_000_000
"""Reset values above this are epoch seconds, below it delta-seconds."""

_LARGEST_COUNT: Final = 2**31 - 1
"""Counts above this (a limit or remaining no upstream grants) read as this."""

_SKEW_TOLERANCE: Final = 3.0
"""Seconds of disagreement with the server's Date header we put down to its 1 s resolution."""

# Most specific first: a response carrying several families is read by the first found.
_FAMILIES: Final = (
    ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"),
    ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
    ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
)

# Every header that can say something about the quota; most responses carry none of them.
_QUOTA_HEADERS: Final = frozenset(
    {"retry-after", "ratelimit"} | {name for family in _FAMILIES for name in family[1:]}
)

_COMBINED_ITEM: Final = re.compile(r"(?:^|[,;\s])(limit|remaining|reset|r|t)\s*=\s*([0-9.]+)")


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What one response says about the quota; None where it says nothing.

    ``reset_after`` and ``retry_after`` are seconds from the moment of reading.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None

    @property
    def has_quota(self) -> bool:
        """Whether the response reported a remaining count."""
        return self.remaining is not None


def _int(value: str | None) -> int | None:
    """A count from 0 to _LARGEST_COUNT, or None (absent, garbage, NaN, infinity)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return min(max(int(number), 0), _LARGEST_COUNT)


def _parse_datetime(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_http_date(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _epoch_wait(epoch: float, now: datetime) -> float | None:
    """Seconds from ``now`` to an epoch reset, reading milliseconds as the module
    docstring says."""
    current = now.timestamp()
    ahead = epoch - current
    if ahead > LONGEST_WAIT:
        seconds = epoch / 1000
        if _EPOCH_THRESHOLD < seconds <= current + LONGEST_WAIT:
            ahead = seconds - current
    return bounded_wait(ahead)


def parse_reset(value: str | None, *, now: datetime) -> float | None:
    """Seconds from ``now`` until the window resets, from epoch seconds, delta-seconds,
    an ISO 8601 time or an HTTP date; None when the value is unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        when = _parse_datetime(text)
        return None if when is None else wait_until(when, now)
    if number < 0:
        return None
    if number > _EPOCH_THRESHOLD:
        return _epoch_wait(number, now)
    return bounded_wait(number)


def server_now(headers: Mapping[str, str], *, now: datetime) -> datetime:
    """The server's idea of now: its Date header when our clocks disagree by more than
    the header's resolution can explain, else ``now``."""
    date = headers.get("date")
    if date is None:
        return now
    when = _parse_datetime(date)
    if when is None:
        return now
    if abs((when - now).total_seconds()) > _SKEW_TOLERANCE:
        return when
    return now


def _combined(value: str, *, now: datetime) -> tuple[int | None, int | None, float | None]:
    found = dict(_COMBINED_ITEM.findall(value))
    remaining = _int(found.get("remaining", found.get("r")))
    reset = found.get("reset", found.get("t"))
    return _int(found.get("limit")), remaining, parse_reset(reset, now=now)


def read_rate_limit(headers: Mapping[str, str], *, now: datetime | None = None) -> RateLimitInfo:
    """The quota a response reports. ``headers`` must have lower-cased names."""
    if _QUOTA_HEADERS.isdisjoint(headers):
        # The common case, read on every response: no clock, no Date header parsing.
        return RateLimitInfo()
    local = now if now is not None else datetime.now(UTC)
    clock = server_now(headers, now=local)
    retry_after = parse_retry_after(headers.get("retry-after"), now=clock)
    for limit_name, remaining_name, reset_name in _FAMILIES:
        if remaining_name in headers or reset_name in headers:
            return RateLimitInfo(
                limit=_int(headers.get(limit_name)),
                remaining=_int(headers.get(remaining_name)),
                reset_after=parse_reset(headers.get(reset_name), now=clock),
                retry_after=retry_after,
            )
    if "ratelimit" in headers:
        limit, remaining, reset = _combined(headers["ratelimit"], now=clock)
        return RateLimitInfo(limit, remaining, reset, retry_after)
    return RateLimitInfo(retry_after=retry_after)
