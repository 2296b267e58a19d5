"""The options of `friendscrape users import`: the CSV file, and the platform its users
are on.

Apart from the import's code, so that mounting them imports nothing of the store: the
command line mounts every command's options for any command it parses.
"""

from __future__ import annotations

import argparse

from friendscrape import arguments
from friendscrape.platforms import SOURCE_NAMES


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``users import`` to ``parser``: the CSV file, and the platform
    its users are on."""
    parser.add_argument(
        "file",
        type=arguments.input_file,
        help="CSV with a header: user_id,screen_name and optionally following_count",
    )
    parser.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        help="the platform the users are on, recorded as the job's: run then collects "
        "from it without --source (env FRIENDSCRAPE_SOURCE)",
    )
