"""The options of `friendscrape estimate`, in three groups: the job and its measured
rate, the workers and money it may take, and the upstream's limits that bound it."""

from __future__ import annotations

import argparse

from friendscrape import arguments
from friendscrape.platforms import SOURCE_NAMES


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add estimate's options to ``parser`` (the global ones are the face's), in the
    order its help lists them."""
    _add_rate(parser)
    _add_workers(parser)
    _add_upstream(parser)
    parser.add_argument(
        "--allow-simulated",
        action="store_true",
        help="with --from-status: estimate from rates measured against the local simulator",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _add_rate(parser: argparse.ArgumentParser) -> None:
    """The users to collect and the rate one worker collects them at."""
    parser.add_argument(
        "--users",
        type=arguments.whole(),
        help="users the job still has to collect (with --from-status: read from the "
        "store, those not done yet)",
    )
    parser.add_argument(
        "--rate", type=arguments.number(above_low=True), help="measured users per day per worker"
    )
    parser.add_argument(
        "--from-status", action="store_true", help="take the measured rate from the store"
    )
    parser.add_argument(
        "--rate-concurrency",
        type=arguments.whole(),
        default=50,
        help="the concurrency --rate was measured at",
    )


def _add_workers(parser: argparse.ArgumentParser) -> None:
    """The days and dollars the job may take, and the workers' sizes and memory."""
    parser.add_argument(
        "--workers",
        type=arguments.whole(1, 100_000),
        metavar="N",
        help="the time and cost of the job with N workers on each tier (default: the "
        "fewest workers that meet --deadline-days)",
    )
    parser.add_argument(
        "--deadline-days",
        type=arguments.number(above_low=True),
        default=10.0,
        help="days the job may take",
    )
    parser.add_argument("--budget", type=arguments.number(), help="most dollars to spend")
    parser.add_argument(
        "--tiers", type=arguments.input_file, help="JSON file of tiers (default: Heroku's)"
    )
    parser.add_argument(
        "--max-concurrency",
        type=arguments.whole(),
        help="highest concurrency a worker may run, scaling the measured rate with it "
        "(default: --rate-concurrency, i.e. no extrapolation)",
    )
    parser.add_argument(
        "--mb-per-user",
        type=arguments.number(above_low=True),
        default=0.24,
        help="memory per user in flight",
    )
    parser.add_argument(
        "--base-mb", type=arguments.number(), default=60.0, help="memory of an idle worker"
    )


def _add_upstream(parser: argparse.ArgumentParser) -> None:
    """The upstream whose documented limits bound the job, and what they apply to."""
    parser.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        help="upstream whose documented rate limits bound the job (env FRIENDSCRAPE_SOURCE; "
        "with --from-status: the job's platform; else none)",
    )
    parser.add_argument(
        "--tokens",
        type=arguments.whole(),
        help="x-api tokens in the pool (default: how many FRIENDSCRAPE_X_BEARER_TOKENS holds)",
    )
    parser.add_argument(
        "--mean-friends",
        type=arguments.number(above_low=True),
        help="accounts a user follows on average, for requests per user (default: one page)",
    )
    parser.add_argument(
        "--rate-limit",
        type=arguments.number(above_low=True),
        help="your own cap on the requests per second one worker sends a host, as run's "
        "FRIENDSCRAPE_RATE_LIMIT sets it; it bounds each worker's rate (not the "
        "platform's limit, which --source brings) (env FRIENDSCRAPE_RATE_LIMIT)",
    )
