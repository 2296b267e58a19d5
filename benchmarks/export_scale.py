"""Export speed and memory on a large collected job: users/s, MB/s and peak RSS per format.

Three stores are written straight with SQL (no runs), N collected users of 550 friends
each: one named by screen name only (the twitter-mobile shape: every target resolved by
name, at save), one of the x-api shape (numeric upstream ids, half of them the job's
users' ids: the export's fast path), and a Bluesky job imported by handle (handles and
DIDs, half of the friends the job's users, matched by handle: off the fast path, matched
as a run saves them, the keys stored with each list). Each export is its own `friendscrape export`
process; its peak RSS is read from the kernel when it exits (wait4), with its CPU time
(user + system, all threads). Targets: peak RSS under 200 MB for every format; jsonl,
edges as JSON lines, CSV and Parquet at least 200,000 users a minute on one core, for
every shape; the x-api and Bluesky jobs' edges (CSV, Parquet) at least 0.8x the
names-only job's rate of the same run. Users a minute are printed per wall-clock minute
and per minute of the export's own CPU time; the targets are checked on the second,
which other work on a shared machine does not slow.

    python benchmarks/export_scale.py                    # 1,000,000 users (several GB)
    python benchmarks/export_scale.py --users 50000      # while developing
    python benchmarks/export_scale.py --users 50000 --store kept.db   # built once, reused
    python benchmarks/export_scale.py --jobs names,x-api --cases "edges csv,edges parquet"

``--jobs`` picks the jobs built (names, x-api, bluesky; all three by default): at 1,000,000
users the Bluesky store alone is some 66 GB. ``--cases`` picks the exports run (by label).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from friendscrape.configdoc import environ_without_configuration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's store builder
from synthetic import build

RSS_LIMIT_MB = 200.0

# (label, export arguments, output suffix, users a minute at least or None)
CASES = [
    ("jsonl (rows)", ["--format", "jsonl"], "jsonl", 200_000),
    ("edges parquet", ["--format", "edges", "--as", "parquet"], "parquet", 200_000),
    ("edges jsonl", ["--format", "edges", "--as", "jsonl"], "jsonl", 200_000),
    ("edges csv", ["--format", "edges", "--as", "csv"], "csv", 200_000),
    ("nodes parquet", ["--format", "nodes", "--as", "parquet"], "parquet", None),
    ("edges parquet --within", ["--format", "edges", "--within"], "parquet", None),
]


# The x-api and Bluesky jobs' cases: their edges (the only export their lists change).
ID_CASES = [case for case in CASES if case[0].startswith("edges")]
ID_SOURCES = ("x-api", "bluesky")
RATIO = 0.8
"""Those jobs' edges (CSV, Parquet) at least this share of the names-only job's rate."""
RATIO_CASES = ("edges csv", "edges parquet")
JOBS = {"names": "twitter-mobile", "x-api": "x-api", "bluesky": "bluesky"}
"""``--jobs`` names: the source each job's store is built as."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    cpu_seconds: float
    megabytes: float
    peak_mb: float


def measure(store: Path, args: list[str], out: Path) -> Measured:
    """Run one export. Text formats go to a pipe whose bytes are counted (edges of a
    million users as JSON lines are some 70 GB: no disk needed); Parquet to ``out``."""
    command = [sys.executable, "-m", "friendscrape.cli", "export", "--store", f"sqlite:///{store}"]
    to_file = out.suffix == ".parquet"
    started = time.monotonic()
    proc = subprocess.Popen(
        [*command, *args, *(["--output", str(out)] if to_file else [])],
        env=environ_without_configuration(os.environ),
        stdout=subprocess.DEVNULL if to_file else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    size = 0
    if not to_file:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            size += len(chunk)
        proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    assert proc.stderr is not None
    error = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        msg = f"export {' '.join(args)} failed: {error.strip()}"
        raise SystemExit(msg)
    if to_file:
        size = out.stat().st_size
        out.unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, cpu, size / 1e6, usage.ru_maxrss / 1024)


def _store(args: argparse.Namespace, folder: str, source: str) -> Path:
    """The store of one shape: built now, or (names-only) the one ``--store`` names."""
    kept = args.store if source == "twitter-mobile" else None
    if kept is None and args.store is not None:
        kept = args.store.with_name(f"{args.store.stem}-{source}{args.store.suffix}")
    store = kept or Path(folder) / f"export-scale-{source}.db"
    started = time.monotonic()
    if not store.exists():
        # Built in a process of its own: an export started from this one would otherwise
        # count this one's memory as its own (the peak RSS a child reports starts at its
        # parent's when it is started), and the Bluesky build holds some 200 MB.
        builder = multiprocessing.get_context("spawn").Process(
            target=build,
            args=(store,),
            kwargs={"users": args.users, "friends": args.friends, "source": source},
        )
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            msg = f"building the {source} store failed"
            raise SystemExit(msg)
    print(
        f"store ({source}): {args.users:,} collected users x {args.friends} friends, "
        f"{store.stat().st_size / 1e9:.1f} GB, built in {time.monotonic() - started:.0f}s",
        flush=True,
    )
    return store


def _run(
    store: Path, users: int, cases: list[tuple[str, list[str], str, int | None]], folder: str
) -> tuple[dict[str, float], list[str]]:
    """Each case's users per CPU minute, and the targets it missed."""
    rates: dict[str, float] = {}
    missed = []
    for label, export_args, suffix, target in cases:
        m = measure(store, export_args, Path(folder) / f"out.{suffix}")
        per_min = users / m.cpu_seconds * 60
        rates[label] = per_min
        print(
            f"  {label:24} {users / m.seconds:9,.0f} users/s"
            f" {users / m.seconds * 60:11,.0f} users/min"
            f" ({per_min:9,.0f} per CPU minute)"
            f" {m.megabytes / m.seconds:7.1f} MB/s  peak RSS {m.peak_mb:6.1f} MB"
            f"  ({m.seconds:.0f}s, {m.cpu_seconds:.0f}s CPU, {m.megabytes:,.0f} MB)",
            flush=True,
        )
        if m.peak_mb > RSS_LIMIT_MB:
            missed.append(f"{label}: peak RSS {m.peak_mb:.0f} MB > {RSS_LIMIT_MB:.0f} MB")
        if target is not None and per_min < target:
            missed.append(f"{label}: {per_min:,.0f} users per CPU minute < {target:,}")
    return rates, missed


def _names(known: dict[str, str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of ``known``'s keys, in the order given."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            msg = f"unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
            raise argparse.ArgumentTypeError(msg)
        return names

    return parse


def _ratios(rates: dict[str, dict[str, float]]) -> list[str]:
    """Print each id-carrying job's rate against the names-only one's; the ratios missed."""
    missed = []
    for source in ID_SOURCES:
        for label in RATIO_CASES:
            if label not in rates.get(source, {}) or label not in rates.get("twitter-mobile", {}):
                continue
            ratio = rates[source][label] / rates["twitter-mobile"][label]
            print(
                f"{source} / names-only, {label}: {ratio:.2f} (per CPU minute, target >= {RATIO})"
            )
            if ratio < RATIO:
                missed.append(f"{source} {label}: {ratio:.2f}x the names-only rate < {RATIO}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--friends", type=int, default=550)
    parser.add_argument("--dir", type=Path, help="folder for the stores (default: a temp one)")
    parser.add_argument(
        "--store",
        type=Path,
        help="the names-only store this script built before (same --users), or to keep; "
        "the x-api and Bluesky ones are kept beside it (NAME-x-api.db, NAME-bluesky.db)",
    )
    parser.add_argument(
        "--jobs",
        type=_names(JOBS),
        default=list(JOBS),
        help=f"comma-separated jobs to build and export ({','.join(JOBS)}; default all)",
    )
    parser.add_argument(
        "--cases",
        type=_names({label: label for label, *_ in CASES}),
        default=None,
        help="comma-separated export labels to run (default all), e.g. 'edges csv,edges parquet'",
    )
    args = parser.parse_args()
    picked = [JOBS[job] for job in args.jobs]
    cases = [case for case in CASES if args.cases is None or case[0] in args.cases]
    missed = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        rates = {}
        for source in picked:
            shape = cases if source == "twitter-mobile" else [c for c in cases if c in ID_CASES]
            store = _store(args, folder, source)
            rates[source], misses = _run(store, args.users, shape, folder)
            missed += [f"{source} {miss}" for miss in misses]
    missed += _ratios(rates)
    for miss in missed:
        print(f"MISSED {miss}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
