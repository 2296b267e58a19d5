"""The `friendscrape` command: the global options, the table of commands, parsing,
building Settings, calling a command, printing its result, and how the process ends.
Each command defines its own options beside its code (``add_options``); the table
mounts them.

Every expected failure ends as one line on stderr (`friendscrape: error: ...`) and a
non-zero exit: 2 for bad input, 1 for a failed store, 3 for an aborted run. The process
policy of a run (SIGTERM/SIGINT, the second signal, the stop's backstop, exiting at once
when it aborts) lives here too; commands only take a stop Event and raise.

Each command's options module imports nothing heavy, and its code (the collector, the
stores, the simulator) is imported inside the function that runs it: every command line
mounts every command's options, so start-up, ``--help`` and each command pay only for
the command that runs (tests/cli/test_startup.py holds this).
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from friendscrape import __version__, argtypes, clihelp
from friendscrape.commands import (
    bench_options,
    demo_options,
    export_options,
    import_users_options,
    plan_options,
    waves_options,
)
from friendscrape.commands.estimate import options as estimate_options
from friendscrape.commands.report import options as report_options
from friendscrape.commands.run import options as run_options
from friendscrape.commands.status import options as status_options
from friendscrape.config import Settings, load_settings
from friendscrape.errors import (
    FriendscrapeError,
    PauseTooLongError,
    RunAbortedError,
    UsageError,
)

if TYPE_CHECKING:
    from friendscrape.models import Partition

T = TypeVar("T")


CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


GLOBAL_OPTIONS = ("store", "log_format", "log_level")


def _add_global_options(
    parser: argparse.ArgumentParser,
    prefix: str = "",
    default: object = None,
    store_help: str = "where users and results live: sqlite:///PATH or bigquery://PROJECT/DATASET",
) -> None:
    parser.add_argument(
        "--store",
        dest=f"{prefix}store",
        default=default,
        type=argtypes.store_url,
        metavar="URL",
        help=store_help,
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
    """The whole command line: the global options here, each command's own options from
    its module (``add_options``), mounted in the order of ``_COMMANDS``."""
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
    for name, command in _COMMANDS.items():
        command.mount(sub, name, common)
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
        from friendscrape import logs

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


class _FirstSignal:
    """The signal that stopped a run (None: none came), so the exit status can say so."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None


def _run_until_stopped(
    command: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    *,
    stop_timeout: float,
    logs_closed: _LogsClosed | None = None,
    first_signal: _FirstSignal | None = None,
) -> T:
    """Run ``command(stop)`` with the process's stop policy.

    The first SIGTERM/SIGINT sets ``stop`` (the command stops intake and flushes) and
    arms a backstop: past ``stop_timeout`` the process exits 3 with one line, so the
    platform's kill never comes first. A second signal exits at once.
    """
    return asyncio.run(_stoppable(command, stop_timeout, logs_closed, first_signal))


async def _stoppable(
    command: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    stop_timeout: float,
    logs_closed: _LogsClosed | None = None,
    first_signal: _FirstSignal | None = None,
) -> T:
    import structlog

    log = structlog.get_logger("friendscrape")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The command runs in this context, so the lines logged on a signal carry what it
    # binds (partition, run id) like its own lines.
    context = contextvars.copy_context()
    seen: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        seen.append(sig.name)
        if len(seen) == 1:
            if first_signal is not None:
                first_signal.signal = sig
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
    (only warnings and worse when ``quiet``, unless --log-level says otherwise), or as
    JSON lines when the log format asked is ``json`` (a one-off dyno read by Papertrail)."""
    from friendscrape import logs
    from friendscrape.core import redaction

    settings = _settings(args)
    level = "warning" if quiet and not args.log_level else settings.log_level
    logs.configure(
        fmt="json" if settings.log_format == "json" else "console",
        level=level,
        stream=sys.stderr,
        secrets=redaction.secret_values(settings.credentials()),
    )
    return settings


def _cmd_users(args: argparse.Namespace) -> int:
    from friendscrape.commands import import_users

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
    from friendscrape.commands import plan

    settings = _settings_with_console_logs(args)
    cut = None
    if args.partitions_command == "plan":
        parts, cut = _run(plan.plan(settings, args.count, force=args.force, balance=args.balance))
    elif args.partitions_command == "place":
        placed, parts = _run(plan.place_users(settings))
        where = ", ".join(f"{n} to partition {number}" for number, n in sorted(placed.items()))
        print(f"placed {sum(placed.values())} users" + (f": {where}" if where else ""))
    else:
        parts, cut = _run(plan.show_plan(settings))
    _print_plan(parts)
    if cut is not None:  # None: an older store, which records no cut
        print(cut.describe())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from friendscrape import logs
    from friendscrape.commands.run import command as run
    from friendscrape.commands.run import progressbar
    from friendscrape.core import redaction

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
    first_signal = _FirstSignal()
    summary = _run_until_stopped(
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
        first_signal=first_signal,
    )
    # Stopped because its log reader went away: users not reached stay pending.
    if logs_closed.happened:
        return CLOSED_PIPE_EXIT
    sig = first_signal.signal
    if sig is not None and summary.stopped:
        # Stopped before its work was done: not a success, so a Kubernetes Job or a Cloud
        # Run task runs it again (a worker idling after its work exits 0 on the signal).
        _to(
            sys.stderr,
            f"friendscrape: stopped by {sig.name}; what it finished is saved, and the "
            "users left stay pending: run it again to collect them\n",
        )
        return 128 + sig.value
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from friendscrape import output_file
    from friendscrape.commands import export, graph_files

    settings = _settings_with_console_logs(args)
    # The store's own file is refused first, whatever its suffix.
    output_file.check(args.output, refuse=output_file.store_files(settings.store))
    args.format = export.chosen_format(args.format, args.output)
    _check_wave_options(args, export.ROW_FORMATS)
    if args.format == "changes":
        between = export.ChangesExport(
            first=args.from_wave,
            second=args.to_wave,
            table=graph_files.table_format(args.table, args.output, args.format),
            compress=export.compression(args.output, args.compress),
        )
        what = _run(export.export_changes(settings, between, args.output))
        print(f"exported {what} to {args.output or 'stdout'}", file=sys.stderr)
        return 0
    if args.format in export.ROW_FORMATS:
        graph_only = [o for o, v in _GRAPH_OPTIONS.items() if getattr(args, v)]
        if graph_only:
            msg = f"{', '.join(graph_only)} apply to --format edges, nodes, graphml or gexf"
            raise UsageError(msg)
        compress = export.compression(args.output, args.compress)
        count, of_job = _run(
            export.export_results(
                settings, args.format, args.output, compress=compress, wave=args.wave
            )
        )
        if args.output is not None:
            print(f"exported {count} users{of_job} to {args.output}", file=sys.stderr)
        return 0
    spec = export.GraphExport(
        fmt=args.format,
        table=(
            graph_files.table_format(args.table, args.output, args.format)
            if args.format not in export.GRAPH_FORMATS
            else args.table or "csv"  # a whole graph is one format: --format says it
        ),
        compress=export.compression(args.output, args.compress),
        within=args.within,
        partition=args.partition,
        force=args.force,
    )
    what = _run(export.export_graph_from(settings, spec, args.output))
    print(f"exported {what} to {args.output or 'stdout'}", file=sys.stderr)
    return 0


def _check_wave_options(args: argparse.Namespace, row_formats: Sequence[str]) -> None:
    """--wave is for the per-user formats, --from-wave/--to-wave for changes."""
    if args.wave is not None and args.format == "changes":
        msg = "--wave applies to --format jsonl or csv: changes take --from-wave and --to-wave"
        raise UsageError(msg)
    if args.wave is not None and args.format not in row_formats:
        # The graph reads resolve each user's newest list only (on SQLite its friends'
        # keys are kept with that list alone): a wave's follows are in its csv rows.
        msg = (
            f"--wave applies to --format jsonl or csv: --format {args.format} exports each "
            f"user's newest list; for wave {args.wave}'s follows use --format csv --wave "
            f"{args.wave} (a row per user and friend, the friend's id where the platform "
            "gives one)"
        )
        raise UsageError(msg)
    pair = [o for o in ("from_wave", "to_wave") if getattr(args, o) is not None]
    if pair and args.format != "changes":
        msg = f"--{pair[0].replace('_', '-')} applies to --format changes"
        raise UsageError(msg)
    if args.format == "changes" and (args.within or args.partition is not None or args.force):
        msg = "--within, --partition and --force do not apply to --format changes"
        raise UsageError(msg)


def _cmd_waves(args: argparse.Namespace) -> int:
    from friendscrape.commands import waves

    settings = _settings_with_console_logs(args)
    if args.waves_command == "new":
        print(waves.opened_text(_run(waves.open_next(settings))))
        return 0
    summaries = _run(waves.list_waves(settings))
    print(waves.to_json(summaries) if args.json else waves.render(summaries))
    return 0


_GRAPH_OPTIONS = {
    "--as": "table",
    "--within": "within",
    "--partition": "partition",
    "--force": "force",
}


def _cmd_simulate(args: argparse.Namespace) -> int:
    from friendscrape.commands import simulate

    return simulate.main(args.forwarded)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    from friendscrape.commands import demo

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
    from friendscrape.commands.status import command as status

    settings = _settings_with_console_logs(args)
    report = _run(status.read_status(settings, window=args.window))
    if args.json:
        print(json.dumps(status.to_json(report), indent=2))
    else:
        print(status.render_table(report, wide=args.wide))
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from friendscrape.commands.estimate import command as estimate

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
            workers=args.workers,
        )
    )
    if args.json:
        print(json.dumps(estimate.to_json(result), indent=2))
    else:
        print(estimate.render(result))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from friendscrape.commands import bench

    _settings_with_console_logs(args, quiet=True)  # validates flags, configures logs
    config = bench_options.TrialConfig(
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
    from friendscrape import output_file
    from friendscrape.commands.report import command as report

    settings = _settings_with_console_logs(args)
    output_file.check(args.output, refuse=output_file.store_files(settings.store))
    if args.page_format is None:
        output_file.check_suffix(args.output, "report writes HTML", ("html", "htm"), "--as html")
    users = _run(report.write_report(settings, args.output, tier=args.tier, tiers=args.tiers))
    if args.output is not None:
        print(f"wrote {args.output} ({users} users collected)", file=sys.stderr)
    elif sys.stdout.isatty():
        print("the report went to the terminal: pass --output report.html", file=sys.stderr)
    return 0


Options = Callable[[argparse.ArgumentParser], None]


def _about(text: str, example: str) -> tuple[str, str]:
    """A command's help page: its line as a sentence, and an example under it."""
    heading = "examples" if "\n" in example else "example"
    return text[0].upper() + text[1:] + ".", f"{heading}:\n  {example}"


@dataclass(frozen=True)
class _Action:
    """One word of a command of two words (``users import``): its help, its options and
    an example of it."""

    help: str
    options: Options | None
    example: str


@dataclass(frozen=True)
class _Command:
    """A command of the table: its line in ``friendscrape --help``, where its options are
    defined (``options``: a command's own ``add_options``), what runs it, and an example
    (its help page shows the line as its description, and the example below the options).

    ``actions``: a command of two words (``users import``), each word with its help and
    options; the global options go between the words too. ``forwards``: every word after
    the command goes, unparsed, to the command's own parser (simulate's, which would load
    the simulator here). ``store``: the help of --store where the command's store is not
    the setting's (demo's)."""

    help: str
    call: Callable[[argparse.Namespace], int]
    options: Options | None = None
    example: str = ""
    actions: dict[str, _Action] = field(default_factory=dict)
    forwards: bool = False
    store: str | None = None

    def mount(
        self,
        sub: argparse._SubParsersAction[argtypes.OneLineParser],
        name: str,
        common: argtypes.OneLineParser,
    ) -> None:
        """Add this command's parser (and its actions') to ``sub``."""
        if self.forwards:
            sub.add_parser(name, add_help=False, help=self.help)
            return
        if self.store is not None:
            common = argtypes.OneLineParser(add_help=False)
            _add_global_options(common, store_help=self.store)
        if not self.actions:
            about, example = _about(self.help, self.example)
            parser = sub.add_parser(
                name, parents=[common], help=self.help, description=about, epilog=example
            )
            if self.options is not None:
                self.options(parser)
            return
        examples = "\n  ".join(each.example for each in self.actions.values())
        about, examples = _about(self.help, examples)
        group = sub.add_parser(name, help=self.help, description=about, epilog=examples)
        # SUPPRESS keeps an action's parser from overwriting what the words before it set.
        _add_global_options(group, prefix="mid_", default=argparse.SUPPRESS)
        words = group.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
        for word, action in self.actions.items():
            about, example = _about(action.help, action.example)
            parser = words.add_parser(
                word, parents=[common], help=action.help, description=about, epilog=example
            )
            if action.options is not None:
                action.options(parser)


# Every command, in the order `friendscrape --help` lists them.
_COMMANDS: dict[str, _Command] = {
    "users": _Command(
        "manage the users to collect",
        _cmd_users,
        actions={
            "import": _Action(
                "import users from CSV (user_id,screen_name[,following_count])",
                import_users_options.add_options,
                "friendscrape users import users.csv --source bluesky",
            )
        },
    ),
    "partitions": _Command(
        "plan and show the partition plan",
        _cmd_partitions,
        actions={
            "plan": _Action(
                "split users as NTILE(N) OVER (ORDER BY user_id)",
                plan_options.add_options,
                "friendscrape partitions plan --count 10",
            ),
            "show": _Action("print the stored plan", None, "friendscrape partitions show"),
            "place": _Action(
                "put users imported after the plan into its partitions, by id range, "
                "moving no planned user",
                None,
                "friendscrape partitions place",
            ),
        },
    ),
    "run": _Command(
        "collect one partition, then exit",
        _cmd_run,
        run_options.add_options,
        "friendscrape run --partition 3",
    ),
    "export": _Command(
        "export results",
        _cmd_export,
        export_options.add_options,
        "friendscrape export --format edges --output edges.csv",
    ),
    "waves": _Command(
        "collect the job again in waves: open the next wave, list the waves",
        _cmd_waves,
        actions={
            "new": _Action(
                "open the next wave: every user is pending again in it",
                None,
                "friendscrape waves new",
            ),
            "list": _Action(
                "each wave: opened, first and last result, users done, lists changed",
                waves_options.add_list_options,
                "friendscrape waves list --json",
            ),
        },
    ),
    "simulate": _Command(
        "run the local simulator of the upstream until stopped (see friendscrape simulate --help)",
        _cmd_simulate,
        forwards=True,
    ),
    "demo": _Command(
        "collect a synthetic job end to end against the local simulator",
        _cmd_demo,
        demo_options.add_options,
        "friendscrape demo --users 3000 --partitions 3",
        store=f"the demo's own store, emptied first (default: {demo_options.DEMO_STORE}, not "
        "FRIENDSCRAPE_STORE's default); a store given here or in FRIENDSCRAPE_STORE must "
        "hold no users",
    ),
    "status": _Command(
        "where every partition stands: progress, rates, ETA",
        _cmd_status,
        status_options.add_options,
        "friendscrape status --wide",
    ),
    "estimate": _Command(
        "days and cost of a job on each worker tier",
        _cmd_estimate,
        estimate_options.add_options,
        "friendscrape estimate --from-status --workers 4",
    ),
    "bench": _Command(
        "timed trials against the local simulator over a grid of concurrency values",
        _cmd_bench,
        bench_options.add_options,
        "friendscrape bench --concurrency 10,50,200",
    ),
    "report": _Command(
        "a self-contained HTML page of progress, tables and charts (to stdout or --output)",
        _cmd_report,
        report_options.add_options,
        "friendscrape report --output report.html",
    ),
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


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The parser of the command (and action: ``users import``) that ``args`` ran."""
    for action in parser._actions:  # argparse has no public look-up of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices[getattr(args, action.dest)]
            return _command_parser(sub, args)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulate":
        args.forwarded = rest  # the simulator's parser reads (and refuses) them
        given = [f"--{n.replace('_', '-')}" for n in GLOBAL_OPTIONS if getattr(args, f"global_{n}")]
        if given:
            parser.error(f"simulate takes none of {', '.join(given)}")
    elif rest:
        # The command's own parser: its hint names its options and its --help.
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(rest)}")
    for name in GLOBAL_OPTIONS:
        # Given after the command, an option wins over the same one given before it.
        for earlier in (f"mid_{name}", f"global_{name}"):
            if getattr(args, name, None) is None:
                setattr(args, name, getattr(args, earlier, None))
    try:
        return _COMMANDS[args.command].call(args)
    except FriendscrapeError as exc:
        _to(sys.stderr, f"friendscrape: error: {_error_text(exc)}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        _to(sys.stderr, "friendscrape: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
