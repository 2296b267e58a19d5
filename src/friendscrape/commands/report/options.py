"""The options of `friendscrape report`: where the page goes and how its cost is priced."""

from __future__ import annotations

import argparse

from friendscrape import arguments


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add report's options to ``parser`` (the global ones are the face's)."""
    parser.add_argument(
        "--output",
        type=arguments.output_file,
        help="HTML file to write, named .html or .htm (default: stdout)",
    )
    parser.add_argument(
        "--as",
        dest="page_format",
        choices=["html"],
        help="write HTML to an --output of any other name",
    )
    parser.add_argument(
        "--tier",
        default="standard-1x",
        help="worker size the cost so far is priced at, from the tiers table "
        "(default: standard-1x)",
    )
    parser.add_argument(
        "--tiers", type=arguments.input_file, help="JSON file of tiers (default: Heroku's)"
    )
