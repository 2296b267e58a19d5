"""The `friendscrape` command: parse arguments, build Settings, call a command, print
its result, and decide how the process ends.

Every expected failure ends as one line on stderr (`friendscrape: error: ...`) and a
non-zero exit: 2 for bad input, 1 for a failed store, 3 for an aborted run. The process
policy of a run (SIGTERM/SIGINT, the second signal, the stop's backstop, exiting at once
when it aborts) lives here too; commands only take a stop Event and raise.

Commands that load the simulator (simulate, demo, bench) are imported only when they
run, so every other command starts without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TextIO, TypeVar

import structlog

from friendscrape import __version__, argtypes, clihelp, logs
from friendscrape.commands import export, graph_files, import_users, plan, run
from friendscrape.commands.run import progressbar
from friendscrape.config import Settings, load_settings, number_rule
from friendscrape.core import redaction
from friendscrape.errors import (
    FriendscrapeError,
    PauseTooLongError,
    RunAbortedError,
    UsageError,
)
from friendscrape.models import Partition
from friendscrape.sources import SOURCE_NAMES

T = TypeVar("T")
log = structlog.get_logger("friendscrape")


# Every option's type comes from argtypes, so hostile values are refused before any work.
_positive_int = argtypes.whole()
_seconds = argtypes.number(above_low=True)
WINDOW_MAX = 10 * 365 * 86400.0  # status --window: ten years, so the window's start is a date
CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


GLOBAL_OPTIONS = ("store", "log_format", "log_level")


def _add_global_options(
    parser: argparse.ArgumentParser, prefix: str = "", default: object = None
) -> None:
    parser.add_argument(
        "--store",
        dest=f"{prefix}store",
        default=default,
        type=argtypes.store_url,
        metavar="URL",
        help="where users and results live: sqlite:///PATH or bigquery://PROJECT/DATASET",
    )
    parser.add_argument(
        "--log-format",
        dest=f"{prefix}log_format",
        default=default,
        choices=["json", "console", "auto"],
        help="json lines, console lines, or auto (console on a terminal)",
    )
    parser.add_argument(
        "--log-level",
        dest=f"{prefix}log_level",
        default=default,
        choices=["debug", "info", "warning", "error"],
        help="lowest level logged",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argtypes.OneLineParser(
        prog="friendscrape",
        description="Collect who each user follows, for millions of users, one partition "
        "per worker.",
        epilog=clihelp.EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"friendscrape {__version__}")
    # The global options are accepted before the command too (kept apart as global_*;
    # main() lets the one given after the command win).
    _add_global_options(parser, prefix="global_")
    common = argtypes.OneLineParser(add_help=False)
    _add_global_options(common)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    users = sub.add_parser("users", help="manage the users to collect")
    # ... and between a command's two words (`users --store URL import`); SUPPRESS keeps a
    # sub-parser from overwriting what the words before it set.
    _add_global_options(users, prefix="mid_", default=argparse.SUPPRESS)
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    imp = users_sub.add_parser(
        "import",
        parents=[common],
        help="import users from CSV (user_id,screen_name[,following_count])",
    )
    imp.add_argument(
        "file",
        type=argtypes.input_file,
        help="CSV with a header: user_id,screen_name and optionally following_count",
    )

    parts = sub.add_parser("partitions", help="plan and show the partition plan")
    _add_global_options(parts, prefix="mid_", default=argparse.SUPPRESS)
    parts_sub = parts.add_subparsers(dest="partitions_command", metavar="ACTION", required=True)
    plan = parts_sub.add_parser(
        "plan", parents=[common], help="split users as NTILE(N) OVER (ORDER BY user_id)"
    )
    plan.add_argument("--count", type=_positive_int, required=True, help="number of partitions")
    plan.add_argument(
        "--force", action="store_true", help="replace the plan even though results exist"
    )
    parts_sub.add_parser("show", parents=[common], help="print the stored plan")
    parts_sub.add_parser(
        "place",
        parents=[common],
        help="put users imported after the plan into its partitions, by id range, "
        "moving no planned user",
    )

    run = sub.add_parser("run", parents=[common], help="collect one partition, then exit")
    run.add_argument(
        "--partition",
        default="auto",
        type=argtypes.partition,
        help="partition number, or auto (from FRIENDSCRAPE_PARTITION, DYNO, "
        "JOB_COMPLETION_INDEX or CLOUD_RUN_TASK_INDEX)",
    )
    run.add_argument("--source", choices=SOURCE_NAMES, help="the upstream to collect from")
    run.add_argument("--base-url", metavar="URL", help="upstream base URL")
    run.add_argument(
        "--concurrency",
        type=argtypes.setting(number_rule("concurrency")),
        help="users in flight at once",
    )
    run.add_argument(
        "--max-friends",
        type=argtypes.setting(number_rule("max_friends")),
        help="cap each list at this many names",
    )
    run.add_argument(
        "--users-limit",
        type=argtypes.setting(number_rule("users_limit")),
        metavar="N",
        help="collect at most N users",
    )
    run.add_argument(
        "--batch-size", type=argtypes.setting(number_rule("batch_size")), help="rows per write"
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="also collect users whose status is failed",
    )
    run.add_argument(
        "--stall-timeout",
        metavar="SECONDS",
        type=argtypes.setting(number_rule("stall_timeout")),
        help="exit non-zero after this many seconds with results waiting and no successful write",
    )
    run.add_argument(
        "--grace-period",
        metavar="SECONDS",
        type=argtypes.setting(number_rule("grace_period")),
        help="seconds in-flight users get after SIGTERM before the final flush",
    )
    run.add_argument(
        "--when-done",
        choices=["exit", "idle"],
        default="exit",
        help="when the partition is complete: exit 0, or idle until stopped",
    )

    exp = sub.add_parser("export", parents=[common], help="export results")
    exp.add_argument(
        "--format",
        choices=export.FORMATS,
        default="jsonl",
        help="jsonl (one object per user), csv (names per user), edges or nodes (graph "
        "tables, ids on both ends), graphml or gexf (whole graph, for Gephi and networkx)",
    )
    exp.add_argument("--output", type=argtypes.output_file, help="file to write (default: stdout)")
    exp.add_argument(
        "--as",
        dest="table",
        choices=graph_files.TABLE_FORMATS,
        help="file format of edges/nodes (default: from the --output suffix, else csv)",
    )
    exp.add_argument(
        "--within",
        action="store_true",
        help="only edges between users of the job (the induced subgraph)",
    )
    exp.add_argument(
        "--partition", type=argtypes.whole(), help="export this partition's users only"
    )
    exp.add_argument("--force", action="store_true", help="write a GraphML/GEXF graph of any size")

    # Its options belong to the simulator's own parser (commands.simulate), which main()
    # hands every word after `simulate`: parsing here would load the simulator.
    sub.add_parser(
        "simulate",
        add_help=False,
        help="run the local simulator of the upstream until stopped "
        "(see friendscrape simulate --help)",
    )

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="collect a synthetic job end to end against the local simulator",
    )
    # demo's own defaults (commands.demo, not imported here: it loads the simulator).
    demo.add_argument(
        "--users", type=_positive_int, default=None, help="synthetic users (default: 3000)"
    )
    demo.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        default="twitter-mobile",
        help="format the simulator serves and the run reads",
    )
    demo.add_argument(
        "--partitions", type=_positive_int, default=10, help="partitions, one run each"
    )
    demo.add_argument(
        "--latency",
        type=argtypes.number(),
        default=None,
        help="simulated seconds per page (default: 0.05)",
    )
    demo.add_argument(
        "--concurrency",
        type=argtypes.setting(number_rule("concurrency")),
        default=None,
        help="users in flight per partition (default: 40)",
    )

    status = sub.add_parser(
        "status", parents=[common], help="where every partition stands: progress, rates, ETA"
    )
    status.add_argument("--json", action="store_true", help="print the versioned JSON document")
    status.add_argument(
        "--wide",
        action="store_true",
        help="every column (statuses, friends, latency per user, overall rate, times); "
        "the default fits 100 columns",
    )
    status.add_argument(
        "--window",
        type=argtypes.number(high=WINDOW_MAX, above_low=True),
        default=3600.0,
        help="seconds the recent rate, 429s and pauses are counted over (default 3600: 1h)",
    )

    est = sub.add_parser(
        "estimate", parents=[common], help="days and cost of a job on each worker tier"
    )
    est.add_argument("--users", type=_positive_int, help="users to collect (--from-status: left)")
    est.add_argument(
        "--rate", type=argtypes.number(above_low=True), help="measured users per day per worker"
    )
    est.add_argument(
        "--from-status", action="store_true", help="take the measured rate from the store"
    )
    est.add_argument(
        "--rate-concurrency",
        type=_positive_int,
        default=50,
        help="the concurrency --rate was measured at",
    )
    est.add_argument(
        "--deadline-days",
        type=argtypes.number(above_low=True),
        default=10.0,
        help="days the job may take",
    )
    est.add_argument("--budget", type=argtypes.number(), help="most dollars to spend")
    est.add_argument(
        "--tiers", type=argtypes.input_file, help="JSON file of tiers (default: Heroku's)"
    )
    est.add_argument(
        "--max-concurrency",
        type=_positive_int,
        help="highest concurrency a worker may run, scaling the measured rate with it "
        "(default: --rate-concurrency, i.e. no extrapolation)",
    )
    est.add_argument(
        "--mb-per-user",
        type=argtypes.number(above_low=True),
        default=0.24,
        help="memory per user in flight",
    )
    est.add_argument(
        "--base-mb", type=argtypes.number(), default=60.0, help="memory of an idle worker"
    )
    est.add_argument(
        "--source",
        choices=SOURCE_NAMES,
        help="upstream whose documented rate limits bound the job (env FRIENDSCRAPE_SOURCE; "
        "default twitter-mobile)",
    )
    est.add_argument(
        "--tokens",
        type=_positive_int,
        help="x-api tokens in the pool (default: how many FRIENDSCRAPE_X_BEARER_TOKENS holds)",
    )
    est.add_argument(
        "--mean-friends",
        type=argtypes.number(above_low=True),
        help="accounts a user follows on average, for requests per user (default: one page)",
    )
    est.add_argument(
        "--rate-limit",
        type=argtypes.number(above_low=True),
        help="requests per second one worker sends a host (env FRIENDSCRAPE_RATE_LIMIT)",
    )
    est.add_argument(
        "--allow-simulated",
        action="store_true",
        help="with --from-status: estimate from rates measured against the local simulator",
    )
    est.add_argument("--json", action="store_true", help="print JSON")

    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="timed trials against the local simulator over a grid of concurrency values",
    )
    bench.add_argument(
        "--concurrency",
        dest="grid",
        type=argtypes.grid,
        default="10,50,200",
        help="grid, e.g. 10,50,200",
    )
    bench.add_argument(
        "--latency", type=argtypes.number(), default=0.3, help="simulated seconds per page"
    )
    bench.add_argument("--users", type=_positive_int, default=300, help="users per trial")
    bench.add_argument("--duration", type=_seconds, default=60.0, help="most seconds per trial")
    bench.add_argument(
        "--mean-friends",
        type=argtypes.number(),
        default=550.0,
        help="accounts a synthetic user follows on average",
    )
    bench.add_argument("--rate-limit-rate", type=argtypes.share, default=0.0, help="share of 429s")
    bench.add_argument("--json", action="store_true", help="print JSON")

    rep = sub.add_parser(
        "report",
        parents=[common],
        help="a self-contained HTML page of progress, tables and charts (to stdout or --output)",
    )
    rep.add_argument(
        "--output", type=argtypes.output_file, help="HTML file to write (default: stdout)"
    )
    rep.add_argument(
        "--tier",
        default="standard-1x",
        help="worker size the cost so far is priced at, from the tiers table "
        "(default: standard-1x)",
    )
    rep.add_argument(
        "--tiers", type=argtypes.input_file, help="JSON file of tiers (default: Heroku's)"
    )
    clihelp.note_settings(parser)
    return parser


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    names = (
        "store",
        "log_format",
        "log_level",
        "source",
        "base_url",
        "concurrency",
        "max_friends",
        "users_limit",
        "batch_size",
        "retry_failed",
        "stall_timeout",
        "grace_period",
    )
    given = {name: getattr(args, name, None) for name in names}
    return load_settings(**given, **extra)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _error_text(exc: FriendscrapeError) -> str:
    """The error line's text: the message, and what the command added to it."""
    if isinstance(exc, PauseTooLongError) and exc.users_left is not None:
        # The restart that resumes them should come later, not at once.
        return f"{exc}; {exc.users_left} users left pending"
    return str(exc)


def _to(stream: TextIO, text: str) -> None:
    """Write ``text`` to stdout or stderr; a reader that went away (a closed pipe) makes
    the stream, and this line, vanish quietly (logs.quiet_closed). A stream closed when
    the process started (``>&-``) is None: nothing is written."""
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        logs.quiet_closed(stream)


def _exit_now(text: str, code: int) -> NoReturn:
    """One error line, then exit without unwinding: a hung store call may hold a thread
    (or the store's lock) that would keep closing the store, or the interpreter, from
    ever finishing. SQLite and BigQuery writes are atomic per chunk: nothing saved is lost."""
    _to(sys.stdout, "")
    _to(sys.stderr, f"friendscrape: error: {text}\n")
    os._exit(code)


def _exit_on_abort(exc: RunAbortedError) -> NoReturn:
    """The run's ``on_abort``: exit with the error's line and code while its store is open."""
    _exit_now(_error_text(exc), exc.exit_code)


def _warn(text: str) -> None:
    _to(sys.stderr, f"friendscrape: warning: {text}\n")


class _LogsClosed:
    """The run's log stream lost its reader (``friendscrape run 2>&1 | head -1``): the run
    then stops as on SIGTERM (stop intake, flush, release the lease), once its loop runs.
    Log lines may come from a store thread, hence the thread-safe call."""

    def __init__(self) -> None:
        self.happened = False
        self._stop: Callable[[], None] | None = None

    def __call__(self) -> None:
        self.happened = True
        if self._stop is not None:
            self._stop()

    def arm(self, stop: Callable[[], None] | None) -> None:
        """Call ``stop`` when the stream closes (now, if it already has)."""
        self._stop = stop
        if stop is not None and self.happened:
            stop()


def _run_until_stopped(
    command: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    *,
    stop_timeout: float,
    logs_closed: _LogsClosed | None = None,
) -> T:
    """Run ``command(stop)`` with the process's stop policy.

    The first SIGTERM/SIGINT sets ``stop`` (the command stops intake and flushes) and
    arms a backstop: past ``stop_timeout`` the process exits 3 with one line, so the
    platform's kill never comes first. A second signal exits at once.
    """
    return asyncio.run(_stoppable(command, stop_timeout, logs_closed))


async def _stoppable(
    command: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    stop_timeout: float,
    logs_closed: _LogsClosed | None = None,
) -> T:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The command runs in this context, so the lines logged on a signal carry what it
    # binds (partition, run id) like its own lines.
    context = contextvars.copy_context()
    seen: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        seen.append(sig.name)
        if len(seen) == 1:
            action = "stop taking users; flush results"
            context.run(log.info, "run.signal", signal=sig.name, action=action)
            stop.set()
            # The pipeline ends its own stop inside this budget; this is the backstop for
            # anything else (closing the store, releasing the lease, the threads a hung
            # store call holds). It stays armed after the command returns: closing the
            # loop still waits for store threads.
            loop.call_later(stop_timeout, on_stop_overrun)
            return
        context.run(log.warning, "run.signal", signal=sig.name, action="second signal: exiting now")
        _to(sys.stdout, "")
        os._exit(128 + sig.value)

    def on_logs_closed() -> None:
        # Like a first signal, without its log line (nobody reads it any more).
        if not seen:
            seen.append("closed logs")
            stop.set()
            loop.call_later(stop_timeout, on_stop_overrun)

    def on_stop_overrun() -> None:
        context.run(log.error, "run.stop_overrun", stop_timeout=stop_timeout)
        _exit_now(
            f"the stop took over {stop_timeout:g}s (FRIENDSCRAPE_STOP_TIMEOUT); "
            "users not saved yet stay pending",
            RunAbortedError.exit_code,
        )

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    def request_stop() -> None:
        loop.call_soon_threadsafe(on_logs_closed)

    if logs_closed is not None:
        logs_closed.arm(request_stop)
    try:
        return await asyncio.create_task(command(stop), context=context)
    finally:
        if logs_closed is not None:
            logs_closed.arm(None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _print_plan(parts: Sequence[Partition]) -> None:
    print(f"{'partition':>9}  {'users':>9}  {'min_user_id':>20}  {'max_user_id':>20}")
    for p in parts:
        print(f"{p.number:>9}  {p.user_count:>9}  {p.min_user_id:>20}  {p.max_user_id:>20}")
    print(f"{'total':>9}  {sum(p.user_count for p in parts):>9}")


def _settings_with_console_logs(args: argparse.Namespace, *, quiet: bool = False) -> Settings:
    """Settings for a command whose output is its result: logs go to stderr for people
    (only warnings and worse when ``quiet``, unless --log-level says otherwise)."""
    settings = _settings(args)
    level = "warning" if quiet and not args.log_level else settings.log_level
    logs.configure(
        fmt="console",
        level=level,
        stream=sys.stderr,
        secrets=redaction.secret_values(settings.credentials()),
    )
    return settings


def _cmd_users(args: argparse.Namespace) -> int:
    settings = _settings_with_console_logs(args)
    report, result = _run(import_users.import_users(settings, args.file))
    for line in report.bad:
        print(f"friendscrape: bad row: {line}", file=sys.stderr)
    print(
        f"read {result.read} rows: {result.added} users added, {result.updated} updated, "
        f"{report.duplicates} duplicates collapsed, {len(report.bad)} bad rows rejected"
    )
    return 1 if report.bad else 0


def _cmd_partitions(args: argparse.Namespace) -> int:
    settings = _settings_with_console_logs(args)
    if args.partitions_command == "plan":
        parts = _run(plan.plan(settings, args.count, force=args.force))
    elif args.partitions_command == "place":
        placed, parts = _run(plan.place_users(settings))
        where = ", ".join(f"{n} to partition {number}" for number, n in sorted(placed.items()))
        print(f"placed {sum(placed.values())} users" + (f": {where}" if where else ""))
    else:
        parts = _run(plan.show_plan(settings))
    _print_plan(parts)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # On a terminal: console logs and a live progress bar on stderr; else JSON lines only.
    bar = progressbar.LiveLine(sys.stderr)
    live = progressbar.wants_bar(sys.stderr, settings.log_format)
    logs_closed = _LogsClosed()
    logs.configure(
        fmt=settings.log_format,
        level=settings.log_level,
        secrets=redaction.secret_values(settings.credentials()),
        stream=bar.as_stream() if live else None,
        on_closed=logs_closed,
    )
    progress = bar.around if live else None
    _run_until_stopped(
        lambda stop: run.run(
            settings,
            args.partition,
            stop=stop,
            when_done=args.when_done,
            progress=progress,
            warn=_warn,
            on_abort=_exit_on_abort,
        ),
        stop_timeout=settings.stop_timeout,
        logs_closed=logs_closed,
    )
    # Stopped because its log reader went away: users not reached stay pending.
    return CLOSED_PIPE_EXIT if logs_closed.happened else 0


def _cmd_export(args: argparse.Namespace) -> int:
    settings = _settings_with_console_logs(args)
    if args.format in export.ROW_FORMATS:
        graph_only = [o for o, v in _GRAPH_OPTIONS.items() if getattr(args, v)]
        if graph_only:
            msg = f"{', '.join(graph_only)} apply to --format edges, nodes, graphml or gexf"
            raise UsageError(msg)
        count = _run(export.export_results(settings, args.format, args.output))
        if args.output is not None:
            print(f"exported {count} users to {args.output}", file=sys.stderr)
        return 0
    spec = export.GraphExport(
        fmt=args.format,
        table=graph_files.table_format(args.table, args.output),
        within=args.within,
        partition=args.partition,
        force=args.force,
    )
    what = _run(export.export_graph_from(settings, spec, args.output))
    print(f"exported {what} to {args.output or 'stdout'}", file=sys.stderr)
    return 0


_GRAPH_OPTIONS = {
    "--as": "table",
    "--within": "within",
    "--partition": "partition",
    "--force": "force",
}


def _cmd_simulate(args: argparse.Namespace) -> int:
    from friendscrape.commands import simulate  # noqa: PLC0415 - imports the simulator

    return simulate.main(args.forwarded)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    from friendscrape.commands import demo  # noqa: PLC0415 - imports the simulator

    settings = _settings_with_console_logs(args, quiet=True)
    result = _run(
        demo.run_demo(
            settings,
            users=args.users,
            partitions=args.partitions,
            latency=args.latency,
            concurrency=args.concurrency,
            source=args.source,
            say=_say,
        )
    )
    print(demo.render(result))
    return result.exit_code


def _cmd_status(args: argparse.Namespace) -> int:
    from friendscrape.commands import status  # noqa: PLC0415

    settings = _settings_with_console_logs(args)
    report = _run(status.read_status(settings, window=args.window))
    if args.json:
        print(json.dumps(status.to_json(report), indent=2))
    else:
        print(status.render_table(report, wide=args.wide))
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from friendscrape.commands import estimate  # noqa: PLC0415

    settings = _settings_with_console_logs(args)
    result = _run(
        estimate.run_estimate(
            settings,
            users=args.users,
            rate=args.rate,
            from_status=args.from_status,
            tiers_path=args.tiers,
            deadline_days=args.deadline_days,
            budget=args.budget,
            rate_concurrency=args.rate_concurrency,
            max_concurrency=args.max_concurrency or args.rate_concurrency,
            mb_per_user=args.mb_per_user,
            base_mb=args.base_mb,
            source=estimate.SourceOptions(
                tokens=args.tokens, mean_friends=args.mean_friends, rate_limit=args.rate_limit
            ),
            allow_simulated=args.allow_simulated,
        )
    )
    if args.json:
        print(json.dumps(estimate.to_json(result), indent=2))
    else:
        print(estimate.render(result))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from friendscrape.commands import bench  # noqa: PLC0415 - imports the simulator

    _settings_with_console_logs(args, quiet=True)  # validates flags, configures logs
    config = bench.TrialConfig(
        concurrency=args.grid,
        users=args.users,
        latency=args.latency,
        duration=args.duration,
        mean_friends=args.mean_friends,
        rate_limit_rate=args.rate_limit_rate,
    )
    results = _run(bench.run_trials(config, say=_say))
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(bench.render(config, results))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from friendscrape.commands import report  # noqa: PLC0415

    settings = _settings_with_console_logs(args)
    users = _run(report.write_report(settings, args.output, tier=args.tier, tiers=args.tiers))
    if args.output is not None:
        print(f"wrote {args.output} ({users} users collected)", file=sys.stderr)
    elif sys.stdout.isatty():
        print("the report went to the terminal: pass --output report.html", file=sys.stderr)
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "users": _cmd_users,
    "partitions": _cmd_partitions,
    "run": _cmd_run,
    "export": _cmd_export,
    "simulate": _cmd_simulate,
    "demo": _cmd_demo,
    "status": _cmd_status,
    "estimate": _cmd_estimate,
    "bench": _cmd_bench,
    "report": _cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script.

    A reader that goes away (``friendscrape export | head -1``) ends the command quietly
    with exit 141, as a shell reports for any writer whose pipe closed: no traceback, and
    nothing in the store is changed by the export that stopped."""
    try:
        code = _main(argv)
        if sys.stdout is not None:  # None: started with stdout closed (>&-)
            sys.stdout.flush()  # now, not at exit, where a closed pipe would print a warning
    except BrokenPipeError:
        _quiet_closed_pipes()
        return CLOSED_PIPE_EXIT
    except BaseExceptionGroup as group:  # raised inside a command's task group
        if group.split(BrokenPipeError)[1] is not None:
            raise
        _quiet_closed_pipes()
        return CLOSED_PIPE_EXIT
    return code


def _quiet_closed_pipes() -> None:
    """Point whichever of stdout and stderr lost its reader at /dev/null."""
    _to(sys.stdout, "")
    _to(sys.stderr, "")


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulate":
        args.forwarded = rest  # the simulator's parser reads (and refuses) them
        given = [f"--{n.replace('_', '-')}" for n in GLOBAL_OPTIONS if getattr(args, f"global_{n}")]
        if given:
            parser.error(f"simulate takes none of {', '.join(given)}")
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    for name in GLOBAL_OPTIONS:
        # Given after the command, an option wins over the same one given before it.
        for earlier in (f"mid_{name}", f"global_{name}"):
            if getattr(args, name, None) is None:
                setattr(args, name, getattr(args, earlier, None))
    try:
        return _COMMANDS[args.command](args)
    except FriendscrapeError as exc:
        _to(sys.stderr, f"friendscrape: error: {_error_text(exc)}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        _to(sys.stderr, "friendscrape: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
