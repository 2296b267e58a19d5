"""The options of `friendscrape demo`, and the demo's own defaults their help states.

Apart from the demo's code, so that mounting them imports neither the simulator nor the
collector: the command line mounts every command's options for any command it parses.
"""

from __future__ import annotations

import argparse

from friendscrape import arguments
from friendscrape.config import number_rule
from friendscrape.platforms import SOURCE_NAMES

DEMO_STORE = "sqlite:///friendscrape-demo.db"
"""The demo's own store, emptied first, unless --store or FRIENDSCRAPE_STORE names one."""
DEFAULT_USERS = 3000
# Shorter lists and pages than the real site, so the whole job fits in about a minute
# on a small machine; `friendscrape bench` and benchmarks/ use the real figures.
DEFAULT_LATENCY = 0.05
DEMO_MEAN_FRIENDS = 150.0
DEFAULT_CONCURRENCY = 40
# A platform researchers can collect from today (public read API, no credentials), so
# the first job a newcomer sees is the kind they will run.
DEFAULT_SOURCE = "bluesky"


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add demo's options to ``parser``: demo's own defaults, said in their help (not the
    settings' of the same names)."""
    parser.add_argument(
        "--users",
        type=arguments.whole(),
        default=None,
        help=f"synthetic users (default: {DEFAULT_USERS})",
    )
    parser.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        default=DEFAULT_SOURCE,
        help=(
            "the platform whose pages the simulator serves and the run reads: bluesky, "
            "x-api or mastodon (live today), or twitter-mobile (the legacy mobile site's "
            "2020 design, shut down in 2020; for archived pages)"
        ),
    )
    parser.add_argument(
        "--partitions", type=arguments.whole(), default=10, help="partitions, one run each"
    )
    parser.add_argument(
        "--latency",
        type=arguments.number(),
        default=None,
        help=f"simulated seconds per page (default: {DEFAULT_LATENCY:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=arguments.setting(number_rule("concurrency")),
        default=None,
        help=f"users in flight per partition (default: {DEFAULT_CONCURRENCY})",
    )
