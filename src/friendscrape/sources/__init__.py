"""Sources: one module per upstream platform (URLs, pagination, status mapping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from friendscrape.errors import UsageError

# Handed on: callers above the sources have always read the names here.
from friendscrape.platforms import SOURCE_NAMES as SOURCE_NAMES

if TYPE_CHECKING:
    from friendscrape.sources.base import Source


X_API_URL_CREDENTIALS = (
    "the base URL carries a user name and password (user:password@host), which x-api "
    "cannot send: its Authorization header holds the bearer token; remove them from "
    "--base-url (FRIENDSCRAPE_BASE_URL)"
)


def checked_base_url(base_url: str | None, default: str) -> str:
    """``base_url`` (or ``default``) without its trailing slash; UsageError when it is not
    ``http(s)://host[/path]`` without a query or fragment."""
    base = (base_url or default).rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        msg = f"base URL must be http(s)://host[/path], got {base_url!r}"
        raise UsageError(msg)
    if parts.query or parts.fragment:
        msg = f"base URL must not carry a query or fragment, got {base_url!r}"
        raise UsageError(msg)
    return base


def quoted_cursor(cursor: str) -> str:
    """``cursor`` quoted for a query string; ValueError when empty (None, not "", asks
    for the first page)."""
    if not cursor:
        msg = "cursor must be non-empty (None asks for the first page)"
        raise ValueError(msg)
    return quote(cursor, safe="")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Which upstream to collect from and where: the platform's ``name``, its
    ``base_url`` (None: the platform's own), and whether a user name and password were
    taken out of that URL (``url_credentials``: sent as Basic auth, which x-api cannot)."""

    name: str
    base_url: str | None = None
    url_credentials: bool = False


def make_source(config: SourceConfig) -> Source:
    """Build the source ``config`` names."""
    # Imports stay inside: a run loads only the parser of the platform it collects from.
    name = config.name
    if name == "twitter-mobile":
        from friendscrape.sources.twitter_mobile import TwitterMobileSource  # noqa: PLC0415

        return TwitterMobileSource(base_url=config.base_url)
    if name == "x-api":
        from friendscrape.sources.x_api import XApiSource  # noqa: PLC0415

        if config.url_credentials:
            # One Authorization header per request, and x-api's holds the bearer token:
            # refused here rather than every request failing.
            raise UsageError(X_API_URL_CREDENTIALS)

        return XApiSource(base_url=config.base_url)
    if name == "bluesky":
        from friendscrape.sources.bluesky import BlueskySource  # noqa: PLC0415

        return BlueskySource(base_url=config.base_url)
    if name == "mastodon":
        from friendscrape.sources.mastodon import MastodonSource  # noqa: PLC0415

        return MastodonSource(base_url=config.base_url)
    msg = f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}"
    raise UsageError(msg)
