"""The options of `friendscrape status`: the form it prints and the window its recent
figures are counted over."""

from __future__ import annotations

import argparse

from friendscrape import arguments

WINDOW_MAX = 10 * 365 * 86400.0  # --window: ten years, so the window's start is a date


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add status's options to ``parser`` (the global ones are the face's)."""
    parser.add_argument("--json", action="store_true", help="print the versioned JSON document")
    parser.add_argument(
        "--wide",
        action="store_true",
        help="every column (statuses, friends, latency per user, overall rate, times); "
        "the default fits 100 columns",
    )
    parser.add_argument(
        "--window",
        type=arguments.number(high=WINDOW_MAX, above_low=True),
        default=3600.0,
        help="seconds the recent rate, 429s and pauses are counted over (default 3600: 1h)",
    )
