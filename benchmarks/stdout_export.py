"""Exports to stdout with PYTHONUNBUFFERED=1 (the project's Docker image sets it): as fast
as with Python's default buffering, in few write calls.

A store of USERS users of 550 friends each (tests/synthetic.py), exported to stdout (a
pipe this process drains) by a new `friendscrape export` process per case, once with
PYTHONUNBUFFERED=1 and once without, in each format a user would stream: the edge CSV
(the largest text export per user), the per-user CSV and GraphML. Then each export again
under strace, with PYTHONUNBUFFERED=1, counting its write calls to stdout (skipped where
strace is missing or cannot trace).

Targets: with PYTHONUNBUFFERED=1 each export costs at most 1.25 times the CPU (user and
system, of the export's process) of its buffered run (when it wrote once per row it took
3 times as long); at most 2 write calls, plus one per half MiB written (writes are of up
to 1 MiB). Wall times are printed too: on a shared machine they move with its load.

    python benchmarks/stdout_export.py [--users N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from friendscrape.configdoc import environ_without_configuration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's store builder
import synthetic

USERS = 10_000
RATIO = 1.25
MIB = 1 << 20
CASES = {
    "edges csv": ["--format", "edges", "--as", "csv"],
    "csv (per user)": ["--format", "csv"],
    "graphml": ["--format", "graphml"],
}


def _export(
    store: Path, args: list[str], *, unbuffered: bool, trace: Path | None
) -> tuple[float, float, int]:
    """Wall and CPU seconds the export took, and the bytes it wrote to stdout (drained
    and counted)."""
    env = environ_without_configuration(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "friendscrape.cli", "export", "--store", f"sqlite:///{store}"]
    if trace is not None:
        command = ["strace", "-f", "-e", "trace=write", "-o", str(trace), *command]
    started, cpu = time.perf_counter(), _children_cpu()
    with subprocess.Popen([*command, *args], stdout=subprocess.PIPE, env=env) as child:
        assert child.stdout is not None
        size = 0
        while block := child.stdout.read(MIB):
            size += len(block)
    if child.returncode != 0:
        msg = f"export {' '.join(args)} failed with exit code {child.returncode}"
        raise SystemExit(msg)
    return time.perf_counter() - started, _children_cpu() - cpu, size


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _can_trace() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True, check=False)
    return probe.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "stdout.db"
        synthetic.build(store, users=args.users)
        print(f"{args.users:,} users of 550 friends, exported to stdout (a pipe)")
        trace = _can_trace()
        for label, case in CASES.items():
            wall, buffered, size = _export(store, case, unbuffered=False, trace=None)
            wall_unbuffered, unbuffered, _ = _export(store, case, unbuffered=True, trace=None)
            ratio = unbuffered / buffered
            print(
                f"{label:15s} {size / 1e6:8.1f} MB: buffered {buffered:5.1f} s CPU"
                f" ({wall:.1f} s wall), PYTHONUNBUFFERED=1 {unbuffered:5.1f} s CPU"
                f" ({wall_unbuffered:.1f} s wall, {size / 1e6 / wall_unbuffered:.0f} MB/s)"
            )
            ok = ratio <= RATIO
            failed += not ok
            verdict = "PASS" if ok else "FAIL"
            print(f"{verdict}  {label}: unbuffered CPU <= {RATIO} x buffered ({ratio:.2f} x)")
            if not trace:
                print(f"skip  {label}: write calls (strace missing or cannot trace here)")
                continue
            log = Path(folder) / "strace.log"
            _export(store, case, unbuffered=True, trace=log)
            writes = sum("write(1," in row for row in log.read_text().splitlines())
            bound = 2 + size // (MIB // 2)
            ok = writes <= bound
            failed += not ok
            verdict = "PASS" if ok else "FAIL"
            print(f"{verdict}  {label}: {writes:,} write calls to stdout <= {bound:,}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
