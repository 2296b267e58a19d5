"""The options of `friendscrape bench`, and the grid of trials they set (``TrialConfig``,
whose defaults are the options').

Apart from the trials' code, so that mounting them imports neither the simulator nor the
collector: the command line mounts every command's options for any command it parses.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from friendscrape import arguments


@dataclass(frozen=True, slots=True)
class TrialConfig:
    """One grid of trials: the simulated upstream and the limits of each trial."""

    concurrency: tuple[int, ...]
    users: int = 300
    latency: float = 0.3
    duration: float = 60.0
    mean_friends: float = 550.0
    rate_limit_rate: float = 0.0
    seed: int = 7
    # Seconds left out of the steady-state figures: connections opening, slow start.
    warmup: float = 0.0


_DEFAULTS = TrialConfig(concurrency=(10, 50, 200))
"""What `friendscrape bench` runs when given no options."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add bench's options to ``parser`` (the global ones are the face's); their defaults
    are TrialConfig's."""
    parser.add_argument(
        "--concurrency",
        dest="grid",
        type=arguments.grid,
        default=",".join(str(each) for each in _DEFAULTS.concurrency),
        help="grid, e.g. 10,50,200",
    )
    parser.add_argument(
        "--latency",
        type=arguments.number(),
        default=_DEFAULTS.latency,
        help="simulated seconds per page",
    )
    parser.add_argument(
        "--users", type=arguments.whole(), default=_DEFAULTS.users, help="users per trial"
    )
    parser.add_argument(
        "--duration",
        type=arguments.number(above_low=True),
        default=_DEFAULTS.duration,
        help="most seconds per trial",
    )
    parser.add_argument(
        "--mean-friends",
        type=arguments.number(),
        default=_DEFAULTS.mean_friends,
        help="accounts a synthetic user follows on average",
    )
    parser.add_argument(
        "--rate-limit-rate",
        type=arguments.share,
        default=_DEFAULTS.rate_limit_rate,
        help="share of 429s",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
