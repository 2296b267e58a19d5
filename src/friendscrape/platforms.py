"""The names of the upstreams friendscrape collects from, written once for every layer.

Settings check ``--source`` against them and ``sources`` builds one source per name, so
they live here, below both, importing nothing: settings need not import the sources to
know which names exist.
"""

from __future__ import annotations

SOURCE_NAMES = ("twitter-mobile", "x-api", "bluesky", "mastodon")

PAGE_SIZES = {"twitter-mobile": 20, "x-api": 1000, "bluesky": 100, "mastodon": 80}
"""Accounts a page of each upstream's following list holds (the sources' PAGE_SIZE; the
legacy mobile site's page lists 20): what ``partitions plan --balance pages`` weighs by."""

NO_PLATFORM = (
    "this job has no platform yet: pass --source (or set FRIENDSCRAPE_SOURCE) with one of "
    + ", ".join(SOURCE_NAMES)
)
"""The refusal of a command that needs a platform and has none: no platform is a default."""
