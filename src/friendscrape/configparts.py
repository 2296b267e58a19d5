"""Settings turned into the small frozen configs of the parts a command opens (its
source, and in time its store), the way httpx hands its client a ``Timeout`` and never
a settings object: below this edge no part reads Settings. A run's own parts get theirs
in ``core/assemble.py``."""

from __future__ import annotations

from friendscrape.config import Settings
from friendscrape.sources import SourceConfig


def source_config(settings: Settings) -> SourceConfig:
    """The source the settings name, at their base URL."""
    return SourceConfig(
        name=settings.source,
        base_url=settings.base_url,
        url_credentials=settings.base_url_credentials is not None,
    )
