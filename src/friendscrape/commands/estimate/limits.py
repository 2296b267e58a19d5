"""Each source's documented request limits, and what they allow a worker and a fleet a day.

One table, one row per ``--source``, each with the public page that documents it. An
estimate turns a row into users a day: requests a day / requests a user, where a user
takes ceil(friends / page size) requests (at least one, at most what ``max_friends``
lets a list grow to). The limits are the platforms' published figures at the time of
writing; they change, and plans differ: check the page before relying on them.

- a ``token`` limit holds for each API token, whichever worker sends the request: the
  pool of tokens bounds the whole fleet, however many workers run;
- an ``ip`` limit holds for each address: each worker has its own (one dyno, one
  address), so it bounds each worker and a fleet grows with its workers;
- a limit of ``None`` is not documented (the legacy site): only the configured
  ``rate_limit`` (requests a second per worker) bounds a worker, when set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from friendscrape.sources import bluesky, mastodon, x_api

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SourceLimit:
    """A platform's documented request limit for the following-list method."""

    source: str
    page_size: int  # follows a page
    requests: int | None  # per window; None: no documented limit
    window_seconds: float
    scope: str  # "token", "ip" or "" (none documented)
    holder: str  # who the limit is about, in words
    doc_url: str

    @property
    def per_day(self) -> float | None:
        """Requests a day for one token or address (None: no documented limit)."""
        if self.requests is None:
            return None
        return self.requests * SECONDS_PER_DAY / self.window_seconds

    def describe(self) -> str:
        """``15 requests/15 min per app token``."""
        if self.requests is None:
            return "no documented limit"
        window = self.window_seconds / 60
        return f"{self.requests:,} requests/{window:g} min {self.holder}"


LIMITS: dict[str, SourceLimit] = {
    limit.source: limit
    for limit in (
        SourceLimit(
            source="x-api",
            page_size=x_api.PAGE_SIZE,
            requests=15,
            window_seconds=900,
            scope="token",
            holder="per token",
            # GET /2/users/:id/following: 15 requests per 15-minute window per app
            # (bearer token) and per user token; 1,000 users a page.
            doc_url="https://docs.x.com/x-api/users/follows/migrate/overview",
        ),
        SourceLimit(
            source="bluesky",
            page_size=bluesky.PAGE_SIZE,
            requests=3000,
            window_seconds=300,
            scope="ip",
            holder="per IP address",
            # The AppView's limit for unauthenticated reads; getFollows gives 100 a page.
            doc_url="https://docs.bsky.app/docs/advanced-guides/rate-limits",
        ),
        SourceLimit(
            source="mastodon",
            page_size=mastodon.PAGE_SIZE,
            requests=300,
            window_seconds=300,
            scope="ip",
            holder="per IP address and instance",
            # Mastodon's default for every API call, per account or per IP; 80 a page.
            doc_url="https://docs.joinmastodon.org/api/rate-limits/",
        ),
        SourceLimit(
            source="twitter-mobile",
            page_size=20,  # the legacy site's following page lists 20 accounts
            requests=None,
            window_seconds=1,
            scope="",
            holder="",
            doc_url="",  # the legacy mobile site never documented one (off since 2020)
        ),
    )
}


@dataclass(frozen=True, slots=True)
class SourceBound:
    """What a source's limits allow, in users a day: per worker and for the whole fleet."""

    source: str
    pages_per_user: int
    mean_friends: float | None
    tokens: int | None  # x-api: the size of the token pool
    per_worker: float | None  # users/day one worker may reach (None: unbounded)
    per_worker_reason: str  # what sets ``per_worker``, in words
    fleet: float | None  # users/day the whole fleet may reach (None: unbounded)
    fleet_reason: str  # what sets ``fleet``, in words
    doc_url: str

    def with_tokens(self, tokens: int) -> SourceBound:
        """The same bound with a pool of ``tokens`` tokens."""
        limit = LIMITS[self.source]
        if limit.scope != "token" or limit.per_day is None:
            return self
        fleet = tokens * limit.per_day / self.pages_per_user
        return replace(
            self,
            tokens=tokens,
            fleet=fleet,
            fleet_reason=_fleet_reason(limit, tokens, fleet, self.pages_per_user),
        )

    def tokens_for(self, users: int, days: float) -> int | None:
        """The fewest tokens that let ``users`` be collected in ``days`` (None: no pool)."""
        limit = LIMITS[self.source]
        if limit.scope != "token" or limit.per_day is None:
            return None
        per_token = limit.per_day / self.pages_per_user
        return max(math.ceil(users / (per_token * days)), 1)


def _requests_words(pages: int) -> str:
    return f"{pages} request{'s' if pages != 1 else ''} a user"


def _fleet_reason(limit: SourceLimit, tokens: int, fleet: float, pages: int) -> str:
    each = limit.describe().removesuffix(" per token")
    return (
        f"{tokens} token{'s' if tokens != 1 else ''} x {each} = {fleet:,.0f} users/day "
        f"at {_requests_words(pages)}"
    )


def pages_per_user(limit: SourceLimit, mean_friends: float | None, max_friends: int) -> int:
    """Requests a user takes: ceil(friends / page size), at least one; one when unknown."""
    if mean_friends is None:
        return 1
    friends = min(mean_friends, float(max_friends))
    return max(math.ceil(friends / limit.page_size), 1)


def source_bound(
    source: str,
    *,
    tokens: int | None,
    mean_friends: float | None,
    max_friends: int,
    rate_limit: float | None,
) -> SourceBound:
    """The bounds of ``source`` with this many tokens, friends a user and configured pace."""
    limit = LIMITS[source]
    pages = pages_per_user(limit, mean_friends, max_friends)
    per_worker: float | None = None
    per_worker_reason = ""
    fleet: float | None = None
    fleet_reason = ""
    per_day = limit.per_day
    page_words = _requests_words(pages)
    if limit.scope == "ip" and per_day is not None:
        per_worker = per_day / pages
        per_worker_reason = f"{limit.describe()} = {per_worker:,.0f} users/day at {page_words}"
    if rate_limit is not None:
        paced = rate_limit * SECONDS_PER_DAY / pages
        if per_worker is None or paced < per_worker:
            per_worker = paced
            per_worker_reason = (
                f"the configured rate limit of {rate_limit:g} requests/s = "
                f"{paced:,.0f} users/day at {page_words}"
            )
    if limit.scope == "token" and per_day is not None:
        pool = tokens if tokens is not None else 1
        fleet = pool * per_day / pages
        fleet_reason = _fleet_reason(limit, pool, fleet, pages)
    return SourceBound(
        source=source,
        pages_per_user=pages,
        mean_friends=mean_friends,
        tokens=tokens,
        per_worker=per_worker,
        per_worker_reason=per_worker_reason,
        fleet=fleet,
        fleet_reason=fleet_reason,
        doc_url=limit.doc_url,
    )


def limits_assumption(bound: SourceBound) -> str:
    """The source's part of the model, in words, printed with every estimate."""
    limit = LIMITS[bound.source]
    friends = (
        f"{bound.mean_friends:g} friends a user on average"
        if bound.mean_friends is not None
        else "one page a user (the best case: pass --mean-friends)"
    )
    head = f"source {bound.source}: {limit.page_size} follows a page, {friends}"
    if limit.requests is None:
        tail = "; no documented request limit" + (
            f"; each worker paced by {bound.per_worker_reason}" if bound.per_worker else ""
        )
        return head + tail
    tail = f"; {limit.describe()} ({limit.doc_url})"
    if limit.scope == "token":
        pool = "" if bound.tokens is not None else " (no tokens given: 1 assumed, pass --tokens)"
        tail += f"; the token pool bounds the whole fleet{pool}"
    else:
        tail += "; each worker is assumed to have its own address"
        if bound.source == "mastodon":
            tail += ", and its users on one instance (the largest sets the pace)"
    return head + tail
