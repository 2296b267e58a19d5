"""Sources: one module per upstream platform (URLs, pagination, status mapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from friendscrape.errors import UsageError

if TYPE_CHECKING:
    from friendscrape.config import Settings
    from friendscrape.sources.base import Source

SOURCE_NAMES = ("twitter-mobile",)


def make_source(settings: Settings) -> Source:
    """Build the source named by ``settings.source``."""
    name = settings.source
    if name == "twitter-mobile":
        from friendscrape.sources.twitter_mobile import TwitterMobileSource  # noqa: PLC0415

        return TwitterMobileSource(base_url=settings.base_url)
    msg = f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}"
    raise UsageError(msg)
