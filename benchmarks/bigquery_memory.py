"""Peak memory of every BigQuery command, each a new CLI process as a user runs it.

Target: each command's peak RSS under 256 MB, half of a 512 MB dyno, with `users import`
of 3,600,000 users among them. Against the local BigQuery-compatible server (bqemulator)
the test suite also starts (one for each of these two parts):

- ``big``: `users import` of a generated file of --users users (3,600,000 by default;
  ids in random order, a few repeated and bad lines), `partitions plan`, `status` and
  `report` over them.
- ``job``: the simulator's accounts (--job-users), imported, planned in one partition and
  collected by `run` against the simulator; then `status`, `report` and `export` in each
  format.

A command's peak is its ru_maxrss, read with wait4 when it exits. The kernel counts in
it the moment between fork and exec, when the child still maps its parent's memory, so
the commands are started by a small launcher process (the standard library only),
itself started before this process imports anything else; the users file is written from
a generator, never held.

    python benchmarks/bigquery_memory.py
    python benchmarks/bigquery_memory.py --users 360000 --job-users 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
LIMIT_MB = 256.0
PROJECT = "test-project"
PLAN_COUNT = 10


@dataclass(frozen=True)
class Measured:
    """One CLI process: what ran, its exit code, wall seconds and peak RSS."""

    what: str
    code: int
    seconds: float
    peak_mb: float
    stderr: str


def write_users(path: Path, count: int) -> None:
    """``count`` distinct ids in a scrambled order (a multiplicative permutation, so no
    list of them is held), 1 in 1,000 repeated with a new name, and 5 bad lines."""
    span = count * 20 + 1
    step = 1_000_003 if span % 1_000_003 else 1_000_033  # coprime with span: distinct ids
    with path.open("w", encoding="utf-8") as out:
        out.write("user_id,screen_name,following_count\n")
        for n in range(count):
            user_id = 10**6 + (n * step) % span
            out.write(f"{user_id},user_{user_id},{user_id % 5000}\n")
            if n % 1000 == 0:
                out.write(f"{user_id},renamed_{user_id},{user_id % 5000}\n")
            if n % (count // 5 or 1) == 0:
                out.write(f",no_id_{n},1\n")


# The launcher: reads one JSON command a line, runs it, answers its exit code, seconds,
# ru_maxrss and the end of its stderr. The standard library only, so it stays small.
_LAUNCHER = """
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    asked = json.loads(line)
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            asked["args"], stdout=subprocess.DEVNULL, stderr=err, env=asked["env"]
        )
        _, status, usage = os.wait4(child.pid, 0)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    answer = {
        "code": os.waitstatus_to_exitcode(status),
        "seconds": time.monotonic() - started,
        "peak_kb": usage.ru_maxrss,
        "stderr": tail,
    }
    print(json.dumps(answer), flush=True)
"""


class Launcher:
    """The small process every measured command is started from."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, what: str, args: list[str], env: dict[str, str]) -> Measured:
        """Run ``friendscrape ARGS`` from the launcher; print and return its figures."""
        pipe_in, pipe_out = self._pipes()
        command = [sys.executable, "-m", "friendscrape.cli", *args]
        pipe_in.write(json.dumps({"args": command, "env": env}) + "\n")
        pipe_in.flush()
        answer = json.loads(pipe_out.readline())
        measured = Measured(
            what, answer["code"], answer["seconds"], answer["peak_kb"] / 1024, answer["stderr"]
        )
        print(
            f"{what:<44} {measured.seconds:>7.1f} s  {measured.peak_mb:>6.1f} MB peak  "
            f"(exit {measured.code})",
            flush=True,
        )
        return measured

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def close(self) -> None:
        """End the launcher (it exits at the end of its input)."""
        pipe_in, _ = self._pipes()
        pipe_in.close()
        self._process.wait(timeout=30)


def _env(endpoint: str, grpc: str, **extra: str) -> dict[str, str]:
    from friendscrape.configdoc import environ_without_configuration  # noqa: PLC0415

    env = environ_without_configuration(os.environ)
    env.update(
        {
            "FRIENDSCRAPE_LOG_LEVEL": "warning",
            "FRIENDSCRAPE_BIGQUERY_ENDPOINT": endpoint,
            "FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT": grpc,
            **extra,
        }
    )
    return env


def _store() -> str:
    return f"bigquery://{PROJECT}/bench_{uuid.uuid4().hex[:8]}"


def bench_big(launch: Launcher, users: int, work: Path, env: dict[str, str]) -> list[Measured]:
    """Import ``users`` users, plan them, and read them back as status and report do."""
    users_csv = work / "users.csv"
    write_users(users_csv, users)
    size = users_csv.stat().st_size / 2**20
    print(f"users file: {users:,} users ({size:.0f} MB)", flush=True)
    store = ["--store", _store()]
    plan = ["partitions", "plan", "--count", str(PLAN_COUNT)]
    report = ["report", "--output", str(work / "big_report.html")]
    # users import exits 1 for the bad lines written on purpose; the rest is saved.
    return [
        launch.run(
            f"users import ({users:,} users)", ["users", "import", str(users_csv), *store], env
        ),
        launch.run(f"partitions plan ({users:,} users)", [*plan, *store], env),
        launch.run(f"status ({users:,} users)", ["status", *store], env),
        launch.run(f"report ({users:,} users)", [*report, *store], env),
    ]


EXPORTS = (
    ("jsonl", ()),
    ("csv", ()),
    ("edges", ("--as", "csv")),
    ("edges", ("--as", "parquet")),
    ("nodes", ("--as", "csv")),
    ("graphml", ()),
)


def bench_job(launch: Launcher, users: int, work: Path, env: dict[str, str]) -> list[Measured]:
    """A small job collected for real: run against the simulator, then every reader."""
    from friendscrape.simulator import SimConfig  # noqa: PLC0415
    from friendscrape.simulator.process import start_simulator_process  # noqa: PLC0415

    users_csv = work / "job_users.csv"
    store = ["--store", _store()]
    sim = start_simulator_process(SimConfig(users=users), env=env, write_users=users_csv)
    try:
        run = ["run", "--partition", "1", "--base-url", sim.base_url, "--concurrency", "100"]
        measured = [
            launch.run(
                f"users import ({users:,} users)",
                ["users", "import", str(users_csv), "--source", "twitter-mobile", *store],
                env,
            ),
            launch.run(
                "partitions plan --count 1", ["partitions", "plan", "--count", "1", *store], env
            ),
            launch.run(f"run ({users:,} users, concurrency 100)", [*run, *store], env),
        ]
    finally:
        sim.stop()
    measured.append(launch.run("status", ["status", *store], env))
    measured.append(launch.run("status --json", ["status", "--json", *store], env))
    measured.append(launch.run("report", ["report", "--output", str(work / "r.html"), *store], env))
    for n, (fmt, extra) in enumerate(EXPORTS):
        output = work / f"export_{n}.{fmt}"
        args = ["export", "--format", fmt, *extra, "--output", str(output), *store]
        measured.append(launch.run(" ".join(["export --format", fmt, *extra]), args, env))
    return measured


def verdicts(measured: list[Measured], limit_mb: float) -> int:
    """Print a PASS or FAIL line per command; the count of FAILs."""
    failed = 0
    for m in measured:
        ok_code = m.code == 0 or (m.code == 1 and m.what.startswith("users import"))
        ok = ok_code and m.peak_mb < limit_mb
        failed += not ok
        why = "" if ok_code else f"; exit {m.code}: {m.stderr.strip()[-300:]}"
        verdict = "PASS" if ok else "FAIL"
        print(f"{verdict}: {m.what}: {m.peak_mb:.1f} MB peak (limit {limit_mb:g} MB){why}")
    return failed


def main() -> int:
    # First, while this process holds nothing but the standard library.
    launch = Launcher()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3_600_000, help="users imported; 0: skip")
    parser.add_argument("--job-users", type=int, default=1_000, help="users collected; 0: skip")
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's emulator starter
    from bqemu import running_emulator  # noqa: PLC0415

    measured: list[Measured] = []
    parts = [(bench_big, args.users), (bench_job, args.job_users)]
    try:
        with tempfile.TemporaryDirectory(prefix="friendscrape-bqmem-") as tmp:
            work = Path(tmp)
            for bench, users in parts:
                if not users:
                    continue
                # A server each: the local one slows (or stalls) holding 3.6M users
                # while a run writes beside them.
                with running_emulator(work / f"bqemulator_{bench.__name__}.log") as emulator:
                    env = _env(emulator.endpoint, emulator.grpc_endpoint)
                    measured += bench(launch, users, work, env)
    finally:
        launch.close()
    return 1 if verdicts(measured, args.limit_mb) else 0


if __name__ == "__main__":
    sys.exit(main())
