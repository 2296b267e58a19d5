"""The options of `friendscrape waves` (apart from its code, so that mounting them imports
nothing of the store)."""

from __future__ import annotations

import argparse


def add_list_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``waves list``."""
    parser.add_argument("--json", action="store_true", help="print the waves as JSON")
