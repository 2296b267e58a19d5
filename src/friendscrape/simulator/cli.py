"""Command-line options of the simulator, shared by ``python -m friendscrape.simulator``
and the main CLI's ``friendscrape simulate`` (commands.simulate mounts ``add_arguments``
and calls ``run``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import structlog

from friendscrape import arguments, logs, output_file
from friendscrape.errors import FriendscrapeError, UsageError
from friendscrape.simulator.app import SimConfig, run_simulator
from friendscrape.simulator.formats import FORMATS, HANDLE_FORMATS, write_users_csv
from friendscrape.simulator.ratelimit import RateLimitStyle, parse_rate_limit

_DEFAULTS = SimConfig()


def _rate_limit(text: str) -> str:
    """``R`` or ``N/W`` as --rate-limit takes it, checked here so a bad one never starts."""
    try:
        spec = parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if spec.rate > 1e6 or (spec.per or 0.0) > 86400:
        msg = f"rate limit {text!r} is out of range (at most 1e6/s, windows up to a day)"
        raise argparse.ArgumentTypeError(msg)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``, in the order its help lists them."""
    _add_server(parser)
    _add_graph(parser)
    _add_faults(parser)
    _add_users_file(parser)


def _add_server(parser: argparse.ArgumentParser) -> None:
    """Where it listens."""
    parser.add_argument(
        "--host",
        type=arguments.host,
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=arguments.port,
        default=0,
        help="port to listen on; 0 picks a free one (default: 0)",
    )


def _add_graph(parser: argparse.ArgumentParser) -> None:
    """The synthetic graph it serves, and how fast and in what pages."""
    parser.add_argument(
        "--users",
        type=arguments.whole(1, 10_000_000),
        default=_DEFAULTS.users,
        help="accounts the simulated platform holds: the synthetic graph's users, all "
        "written by --write-users (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=arguments.whole(0, 2**63 - 1),
        default=_DEFAULTS.seed,
        help="seed of the graph; the same seed gives the same graph (default: %(default)s)",
    )
    parser.add_argument(
        "--wave",
        type=arguments.whole(1, 10_000),
        default=_DEFAULTS.wave,
        help="serve the graph as of this wave: wave 1 is the seed's graph, each later wave "
        "changes about --churn of the lists (default: %(default)s)",
    )
    parser.add_argument(
        "--churn",
        type=arguments.number(0.0, 1.0),
        default=_DEFAULTS.churn,
        help="share of the ok accounts each wave after the first changes: most gain or lose "
        "1-5 follows, some are suspended or deleted (default: %(default)s)",
    )
    parser.add_argument(
        "--mean-friends",
        type=arguments.number(0.0, 1_000_000.0),
        default=_DEFAULTS.mean_friends,
        help="mean following count (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=arguments.number(0.0, 3600.0),
        default=_DEFAULTS.latency,
        help="seconds before each page is answered (default: %(default)s)",
    )
    parser.add_argument(
        "--page-size",
        type=arguments.whole(1, 100_000),
        default=_DEFAULTS.page_size,
        help="accounts per page (default: %(default)s)",
    )


def _add_faults(parser: argparse.ArgumentParser) -> None:
    """The faults it injects: errors, 429s and rate limits, dropped and hung pages,
    hostile accounts."""
    parser.add_argument(
        "--error-rate",
        type=arguments.number(),
        default=0.0,
        help="share of pages answered with HTTP 500",
    )
    parser.add_argument(
        "--rate-limit-rate",
        type=arguments.number(),
        default=0.0,
        help="share of pages answered with HTTP 429 and Retry-After",
    )
    parser.add_argument(
        "--retry-after",
        type=arguments.whole(0, 86400),
        default=_DEFAULTS.retry_after,
        help="seconds sent in Retry-After on HTTP 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        metavar="R|N/W",
        default=None,
        help="the simulated platform's own limit on each client (API token, or address): "
        "R requests/s (token bucket) or N requests per W seconds (fixed window), answered "
        "with 429 beyond it (default: no limit)",
    )
    parser.add_argument(
        "--rate-limit-style",
        choices=[style.value for style in RateLimitStyle],
        default=_DEFAULTS.rate_limit_style,
        help="whose rate-limit headers to send with --rate-limit (default: %(default)s)",
    )
    parser.add_argument(
        "--drop-rate",
        type=arguments.number(),
        default=0.0,
        help="share of pages whose connection is closed without a response",
    )
    parser.add_argument(
        "--hang-rate",
        type=arguments.number(),
        default=0.0,
        help="share of pages never answered (until the simulator stops)",
    )
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="add accounts whose pages are malformed, endless, huge or redirect off-host",
    )


def _add_users_file(parser: argparse.ArgumentParser) -> None:
    """The CSV of accounts to collect it may write first, and in which source's form."""
    parser.add_argument(
        "--users-format",
        choices=FORMATS,
        default="twitter-mobile",
        help="the source whose form --write-users writes users in (default: %(default)s)",
    )
    parser.add_argument(
        "--handles",
        action="store_true",
        help=(
            "with --users-format x-api or mastodon: write handles (usernames; Mastodon "
            "@name@instance on three instances) that the collector looks up, not ids"
        ),
    )
    parser.add_argument(
        "--write-users",
        type=arguments.output_file,
        metavar="CSV",
        default=None,
        help="first write the accounts to collect to this CSV "
        "(user_id,screen_name,following_count; the count empty for about 15 %% of users "
        "in the twitter-mobile and bluesky forms), named .csv or with no suffix",
    )
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="write --write-users and exit without serving, so a script can import the "
        "file before it starts the simulator (the same --users and --seed serve the same graph)",
    )
    parser.add_argument(
        "--as",
        dest="users_file_format",
        choices=["csv"],
        help="write the CSV of --write-users to a file of any other name",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the parsed options describe; ValueError when they are inconsistent."""
    return SimConfig(
        users=args.users,
        seed=args.seed,
        mean_friends=args.mean_friends,
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        hang_rate=args.hang_rate,
        hostile=args.hostile,
        page_size=args.page_size,
        rate_limit=getattr(args, "rate_limit", None),
        rate_limit_style=getattr(args, "rate_limit_style", _DEFAULTS.rate_limit_style),
        wave=getattr(args, "wave", _DEFAULTS.wave),
        churn=getattr(args, "churn", _DEFAULTS.churn),
    )


def config_args(config: SimConfig) -> list[str]:
    """The options that make the process entry serve ``config`` (config_from_args' inverse)."""
    args = [
        f"--users={config.users}",
        f"--seed={config.seed}",
        f"--mean-friends={config.mean_friends}",
        f"--latency={config.latency}",
        f"--page-size={config.page_size}",
        f"--error-rate={config.error_rate}",
        f"--rate-limit-rate={config.rate_limit_rate}",
        f"--retry-after={config.retry_after}",
        f"--drop-rate={config.drop_rate}",
        f"--hang-rate={config.hang_rate}",
        f"--rate-limit-style={config.rate_limit_style}",
        f"--wave={config.wave}",
        f"--churn={config.churn}",
    ]
    if config.rate_limit is not None:
        args.append(f"--rate-limit={config.rate_limit}")
    if config.hostile:
        args.append("--hostile")
    return args


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop. Bad options and a --write-users
    file that cannot be written raise UsageError (exit 2), a port that cannot be used
    FriendscrapeError (exit 1), each after its log event."""
    if not structlog.is_configured():
        logs.configure(fmt=_log_format())
    log = structlog.get_logger("friendscrape.simulator")
    try:
        config = config_from_args(args)
        graph = config.make_graph()
    except ValueError as exc:
        log.error("simulator.bad_options", error=str(exc))
        raise UsageError(str(exc)) from None
    if args.handles and args.users_format not in HANDLE_FORMATS:
        msg = f"--handles needs --users-format {' or '.join(HANDLE_FORMATS)}"
        raise UsageError(msg)
    if getattr(args, "no_serve", False) and not args.write_users:
        raise UsageError("--no-serve writes the users file and exits: give --write-users CSV")
    if args.write_users:
        if getattr(args, "users_file_format", None) is None:
            path, writes = args.write_users, "the users file is CSV"
            output_file.check_suffix(path, writes, ("csv",), "--as csv", "--write-users")
        try:
            rows = write_users_csv(graph, args.write_users, args.users_format, handles=args.handles)
        except UsageError as exc:  # a path that cannot be written (output_file)
            log.error("simulator.write_failed", path=str(args.write_users), error=str(exc))
            raise
        log.info("simulator.users_written", path=str(args.write_users), rows=rows)
    if getattr(args, "no_serve", False):
        return 0
    try:
        asyncio.run(_serve(config, args.host, args.port))
    except OSError as exc:
        log.error("simulator.listen_failed", host=args.host, port=args.port, error=str(exc))
        msg = f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        raise FriendscrapeError(msg) from None
    return 0


async def _serve(config: SimConfig, host: str, port: int) -> None:
    log = structlog.get_logger("friendscrape.simulator")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with run_simulator(config, host, port) as sim:
            if sys.stderr is not None and sys.stderr.isatty():
                _say_where(sim.base_url)
            log.info("simulator.ready", **sim.describe())
            await stop.wait()
            log.info("simulator.stopping", **sim.stats.snapshot())
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("simulator.stopped")


def _log_format() -> str:
    """FRIENDSCRAPE_LOG_FORMAT's format (json, console), else auto: short console lines
    on a terminal, JSON lines otherwise (what a process reading the port gets)."""
    fmt = os.environ.get("FRIENDSCRAPE_LOG_FORMAT", "auto").strip().lower()
    return fmt if fmt in {"json", "console", "auto"} else "auto"


def _say_where(base_url: str) -> None:
    """The first words on a terminal: where it listens and how to stop it (a simulator
    started with ``&`` in the background does not hear Ctrl-C)."""
    pid = os.getpid()
    sys.stderr.write(f"simulator at {base_url} (pid {pid}); stop it with: kill {pid} (or Ctrl-C)\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m friendscrape.simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m friendscrape.simulator",
        description="Serve a synthetic follow graph as the legacy mobile site's pages.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except FriendscrapeError as exc:
        sys.stderr.write(f"friendscrape: error: {exc}\n")
        return exc.exit_code
