"""The `simulate` command: the simulator's own options and server under `friendscrape`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from friendscrape import arguments
from friendscrape.simulator import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    """The simulator's options as ``friendscrape simulate`` takes them (errors one line)."""
    parser = arguments.OneLineParser(
        prog="friendscrape simulate",
        description="Run the local simulator of the upstream until stopped: a synthetic "
        "follow graph served in each source's format.",
        epilog="example (users for a Bluesky job, then serve until Ctrl-C or kill):\n"
        "  friendscrape simulate --users-format bluesky --write-users users.csv --port 8080",
    )
    sim_cli.add_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Serve until SIGTERM or SIGINT (the words after ``friendscrape simulate``)."""
    return sim_cli.run(build_parser().parse_args(argv))
