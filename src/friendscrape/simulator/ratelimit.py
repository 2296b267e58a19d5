"""Per-client rate limits for the simulator, with each upstream's headers.

``--rate-limit R`` is a token bucket of R requests/s holding at most R tokens (one
second of burst); ``--rate-limit N/W`` is a fixed window of N requests per W seconds,
windows aligned to multiples of W on the wall clock (as a reset in epoch seconds needs).
A client is its ``Authorization`` header when it sends one (so each API token has its
own window, as on X) and its address otherwise. Every answered request carries the
style's headers; a request over the limit gets a 429 with them at once (no latency).

Styles and what they send (the semantics each platform documents):

- ``twitter`` / ``x-api``: ``x-rate-limit-limit``, ``x-rate-limit-remaining``,
  ``x-rate-limit-reset`` (epoch seconds); 429 with the legacy error page / a JSON problem;
- ``bluesky``: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (epoch
  seconds), ``RateLimit-Policy``;
- ``ietf``: the same names with the reset in delta-seconds (the IETF draft);
- ``mastodon``: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset``
  (an ISO 8601 time with milliseconds);
- ``retry-after``: nothing on success, ``Retry-After`` (seconds) on a 429.

For a token bucket, ``remaining`` is the whole tokens left and the reset is when the
bucket is full again. ``GET /_sim/ratelimit`` returns the counters as JSON: requests
allowed and limited, allowed per wall-clock second, the limit itself, and ``early``:
requests a client sent inside the wait a 429 asked of it (after ``EARLY_GRACE`` for
requests already in flight), which a well-behaved client never does.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from aiohttp import web

STATS_PATH: Final = "/_sim/ratelimit"
"""Path of the rate-limit counters (JSON)."""

EARLY_GRACE: Final = 0.25
"""Seconds after a 429 during which requests already in flight may still arrive."""

_SPEC: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?$")

_LIMITED_BODIES: Final = {
    "twitter": (
        "text/html; charset=utf-8",
        (
            b"<!DOCTYPE html>\n<html><head><title>Twitter / Rate limit</title></head>"
            b'<body class="error-page"><div class="system">Rate limit exceeded.</div>'
            b"</body></html>\n"
        ),
    ),
    "x-api": (
        "application/problem+json",
        (
            b'{"title": "Too Many Requests", "detail": "Too Many Requests", '
            b'"type": "about:blank", "status": 429}'
        ),
    ),
    "bluesky": (
        "application/json",
        b'{"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}',
    ),
    "mastodon": ("application/json", b'{"error": "Too many requests"}'),
}
_PLAIN_BODY: Final = ("text/plain", b"Too Many Requests\n")


class RateLimitStyle(StrEnum):
    """Whose rate-limit headers the simulator sends."""

    TWITTER = "twitter"
    X_API = "x-api"
    BLUESKY = "bluesky"
    IETF = "ietf"
    MASTODON = "mastodon"
    RETRY_AFTER = "retry-after"


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """A token bucket (``per`` None: ``count`` requests/s) or ``count`` per ``per`` s."""

    count: float
    per: float | None = None

    @property
    def rate(self) -> float:
        """Sustained requests per second."""
        return self.count if self.per is None else self.count / self.per

    @property
    def capacity(self) -> int:
        """Most requests allowed at once: the bucket's size or the window's count."""
        return max(int(self.count), 1)


def parse_rate_limit(text: str) -> RateLimitSpec:
    """``"R"`` (requests/s, token bucket) or ``"N/W"`` (N per W seconds); ValueError else."""
    match = _SPEC.match(text)
    if match is None:
        msg = f"rate limit must be R (requests/s) or N/W (N requests per W seconds), got {text!r}"
        raise ValueError(msg)
    count = float(match.group(1))
    per = float(match.group(2)) if match.group(2) is not None else None
    if count <= 0 or (per is not None and (per <= 0 or count < 1)):
        msg = f"rate limit must be positive, got {text!r}"
        raise ValueError(msg)
    return RateLimitSpec(count, per)


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one request; ``reset`` is epoch seconds."""

    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: float


class _Bucket:
    def __init__(self, spec: RateLimitSpec, now: float) -> None:
        self._spec = spec
        self._tokens = float(spec.capacity)
        self._at = now

    def check(self, now: float) -> Decision:
        spec = self._spec
        self._tokens = min(self._tokens + (now - self._at) * spec.rate, spec.capacity)
        self._at = now
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        full_in = (spec.capacity - self._tokens) / spec.rate
        next_in = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / spec.rate
        return Decision(allowed, spec.capacity, int(self._tokens), now + full_in, next_in)


class _Window:
    def __init__(self, spec: RateLimitSpec) -> None:
        self._spec = spec
        self._start = -math.inf
        self._used = 0

    def check(self, now: float) -> Decision:
        per = self._spec.per
        assert per is not None  # noqa: S101 - only made for windows
        start = math.floor(now / per) * per
        if start != self._start:
            self._start, self._used = start, 0
        limit = self._spec.capacity
        allowed = self._used < limit
        if allowed:
            self._used += 1
        end = start + per
        return Decision(allowed, limit, limit - self._used, end, 0.0 if allowed else end - now)


class Recorder(Protocol):
    """Where a limited request is counted (the simulator's SimStats)."""

    def record(self, kind: str, outcome: str) -> None:
        """Count one request of ``kind`` that ended with ``outcome``."""


class ClientLimits:
    """Each client's bucket or window, and the counters of what was allowed."""

    def __init__(
        self,
        spec: RateLimitSpec,
        style: RateLimitStyle,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.style = style
        self._clock = clock
        self._clients: dict[str, _Bucket | _Window] = {}
        self.allowed = 0
        self.limited = 0
        self.per_second: Counter[int] = Counter()
        self.early = 0
        self._told: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> Decision:
        """Count a request from ``client`` against its limit."""
        now = self._clock()
        state = self._clients.get(client)
        if state is None:
            state = _Bucket(self.spec, now) if self.spec.per is None else _Window(self.spec)
            self._clients[client] = state
        told = self._told.get(client)
        if told is not None and told[0] + EARLY_GRACE < now < told[1]:
            self.early += 1
        decision = state.check(now)
        if not decision.allowed:
            self._told[client] = (now, now + decision.retry_after)
        if decision.allowed:
            self.allowed += 1
            self.per_second[int(now)] += 1
        else:
            self.limited += 1
        return decision

    def headers(self, decision: Decision) -> dict[str, str]:
        """The style's headers for ``decision`` (Retry-After only on a refusal)."""
        style = self.style
        limit, remaining = str(decision.limit), str(decision.remaining)
        epoch = str(math.ceil(decision.reset))
        headers: dict[str, str]
        if style in {RateLimitStyle.TWITTER, RateLimitStyle.X_API}:
            headers = {
                "x-rate-limit-limit": limit,
                "x-rate-limit-remaining": remaining,
                "x-rate-limit-reset": epoch,
            }
        elif style in {RateLimitStyle.BLUESKY, RateLimitStyle.IETF}:
            reset = (
                epoch
                if style is RateLimitStyle.BLUESKY
                else str(math.ceil(max(decision.reset - self._clock(), 0)))
            )
            window = self.spec.per if self.spec.per is not None else 1
            headers = {
                "RateLimit-Limit": limit,
                "RateLimit-Remaining": remaining,
                "RateLimit-Reset": reset,
                "RateLimit-Policy": f"{limit};w={window:g}",
            }
        elif style is RateLimitStyle.MASTODON:
            when = datetime.fromtimestamp(decision.reset, UTC)
            headers = {
                "X-RateLimit-Limit": limit,
                "X-RateLimit-Remaining": remaining,
                "X-RateLimit-Reset": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
        else:
            headers = {}
        if not decision.allowed and style is RateLimitStyle.RETRY_AFTER:
            headers["Retry-After"] = str(max(math.ceil(decision.retry_after), 1))
        return headers

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        return {
            "limit": {"count": self.spec.count, "per": self.spec.per, "rate": self.spec.rate},
            "style": str(self.style),
            "allowed": self.allowed,
            "limited": self.limited,
            "early": self.early,
            "per_second": {str(k): v for k, v in sorted(self.per_second.items())},
        }


def _kind(request: web.Request) -> str:
    query = request.query
    if any(key in query for key in ("cursor", "pagination_token", "max_id")):
        return "next_page"
    path = request.path
    if path.endswith(("/following", ".getFollows")):
        return "first_page"
    return "other"


def _client(request: web.Request) -> str:
    return request.headers.get("Authorization") or request.remote or "unknown"


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, spec: RateLimitSpec, style: str, stats: Recorder) -> None:
    """Limit every request to ``app`` but the control routes, and serve the counters."""
    limits = ClientLimits(spec, RateLimitStyle(style))

    @web.middleware
    async def limit(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path == STATS_PATH:
            return web.json_response(limits.snapshot())
        if request.path.startswith("/_sim/"):
            return await handler(request)
        client = _client(request)
        decision = limits.check(client)
        headers = limits.headers(decision)
        if not decision.allowed:
            stats.record(_kind(request), "429")
            content_type, body = _LIMITED_BODIES.get(style, _PLAIN_BODY)
            return web.Response(
                status=429, body=body, headers={"Content-Type": content_type, **headers}
            )
        response = await handler(request)
        response.headers.update(headers)
        return response

    app.middlewares.append(limit)
