"""The options of `friendscrape partitions plan` (show and place take none).

Apart from the plan's code, so that mounting them imports nothing of the store: the
command line mounts every command's options for any command it parses.
"""

from __future__ import annotations

import argparse

from friendscrape import arguments


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``partitions plan`` to ``parser`` (show and place take none)."""
    parser.add_argument(
        "--count", type=arguments.whole(), required=True, help="number of partitions"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the plan even though results exist"
    )
    parser.add_argument(
        "--balance",
        choices=["users", "pages"],
        default="users",
        help="cut partitions by users (NTILE, the default) or by expected pages: each user "
        "weighs ceil(min(following_count, max_friends) / page size) + 1, the median where "
        "no count is known",
    )
