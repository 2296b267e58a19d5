"""The options of `friendscrape run`: which partition, the upstream, and the settings a
run may be given on its command line (each refused by its setting's own rule)."""

from __future__ import annotations

import argparse

from friendscrape import arguments
from friendscrape.config import number_rule
from friendscrape.platforms import SOURCE_NAMES


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add run's options to ``parser`` (the global ones are the face's)."""
    parser.add_argument(
        "--partition",
        default="auto",
        type=arguments.partition,
        help="partition number; auto (from FRIENDSCRAPE_PARTITION, DYNO, "
        "JOB_COMPLETION_INDEX or CLOUD_RUN_TASK_INDEX); or next (claim the lowest free "
        "partition with pending users, collect it, claim again until none is left)",
    )
    parser.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        help="the upstream to collect from: the job's platform (recorded by users import "
        "--source) when not given; another is refused",
    )
    parser.add_argument("--base-url", metavar="URL", help="upstream base URL")
    parser.add_argument(
        "--concurrency",
        type=arguments.setting(number_rule("concurrency")),
        help="users in flight at once",
    )
    parser.add_argument(
        "--max-friends",
        type=arguments.setting(number_rule("max_friends")),
        help="cap each list at this many names",
    )
    parser.add_argument(
        "--users-limit",
        type=arguments.setting(number_rule("users_limit")),
        metavar="N",
        help="collect at most N users",
    )
    parser.add_argument(
        "--batch-size", type=arguments.setting(number_rule("batch_size")), help="rows per write"
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="also collect users whose status is failed",
    )
    parser.add_argument(
        "--stall-timeout",
        metavar="SECONDS",
        type=arguments.setting(number_rule("stall_timeout")),
        help="exit non-zero after this many seconds with results waiting and no successful write",
    )
    parser.add_argument(
        "--grace-period",
        metavar="SECONDS",
        type=arguments.setting(number_rule("grace_period")),
        help="seconds in-flight users get after SIGTERM before the final flush",
    )
    parser.add_argument(
        "--when-done",
        choices=["exit", "idle"],
        default="exit",
        help="when the partition (with next: every partition) is complete: exit 0, or "
        "idle until stopped",
    )
