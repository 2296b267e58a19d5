"""`users import` and `partitions plan` at the job's size, each a new CLI process.

SQLite: 3,600,000 users (targets: import under 2 minutes and 200 MB peak RSS, plan under
30 s), then a plan of 1,000 partitions cut by pages (``--balance pages``, the legacy
site's 20 accounts a page, following counts 0-4,999: most lists reach max_friends), its
time and memory printed. BigQuery, against the local server (bqemulator) the test suite also starts:
100,000 users (import under 200 MB peak RSS), and the BigQuery jobs the import sent,
counted on the server: the count does not grow with the users (one load job, one count
query, one MERGE), so it is what an import of 3.6M users sends too. Times on the local
server are the emulator's, not BigQuery's.

The users file is generated here: ids in random order, a few repeated ids and bad lines.

    python benchmarks/import_scale.py
    python benchmarks/import_scale.py --sqlite-users 360000 --bigquery-users 0
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from friendscrape.configdoc import environ_without_configuration

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's emulator starter

IMPORT_SECONDS = 120.0
IMPORT_MB = 200.0
PLAN_SECONDS = 30.0
PLAN_COUNT = 10
PAGES_PLAN_COUNT = 1000
PAGES_SOURCE = "twitter-mobile"  # a platform with a page size, for --balance pages
PROJECT = "test-project"


@dataclass(frozen=True)
class Measured:
    """One CLI process: exit code, wall seconds, peak RSS from the kernel."""

    code: int
    seconds: float
    peak_mb: float
    stderr: str


def write_users(path: Path, count: int, *, seed: int = 17) -> None:
    """``count`` distinct users in random id order, plus 1 in 1,000 repeated and 5 bad lines."""
    rng = random.Random(seed)
    ids = rng.sample(range(10**6, 10**6 + count * 20), count)
    with path.open("w", encoding="utf-8") as out:
        out.write("user_id,screen_name,following_count\n")
        for n, user_id in enumerate(ids):
            out.write(f"{user_id},user_{user_id},{user_id % 5000}\n")
            if n % 1000 == 0:
                out.write(f"{user_id},renamed_{user_id},{user_id % 5000}\n")
            if n % (count // 5 or 1) == 0:
                out.write(f",no_id_{n},1\n")


def _hwm_mb(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def run_cli(args: list[str], env: dict[str, str]) -> Measured:
    """Run ``friendscrape ARGS``; its peak RSS is VmHWM, read until it exits (wait4's
    ru_maxrss would count this process's memory at the fork as the child's)."""
    started = time.monotonic()
    peak = 0.0
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "friendscrape.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        while process.poll() is None:
            # Sampling a child's memory, not ordering events.
            peak = max(peak, _hwm_mb(process.pid) or 0.0)
            time.sleep(0.02)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return Measured(process.returncode, time.monotonic() - started, peak, text)


def _env(**extra: str) -> dict[str, str]:
    env = environ_without_configuration(os.environ)
    env.update({"FRIENDSCRAPE_LOG_LEVEL": "warning", **extra})
    return env


def _line(what: str, m: Measured) -> str:
    return f"{what:<56} {m.seconds:>8.1f} s  {m.peak_mb:>7.1f} MB peak RSS  (exit {m.code})"


def bench_sqlite(users: int, work: Path) -> list[str]:
    """Import and plan on SQLite; the missed targets."""
    users_csv = work / "users.csv"
    write_users(users_csv, users)
    store = f"sqlite:///{work / 'bench.db'}"
    env = _env()
    imported = run_cli(["users", "import", str(users_csv), "--store", store], env)
    print(_line(f"sqlite: import {users:,} users", imported), flush=True)
    again = run_cli(["users", "import", str(users_csv), "--store", store], env)
    print(_line(f"sqlite: re-import {users:,} users", again), flush=True)
    planned = run_cli(["partitions", "plan", "--count", str(PLAN_COUNT), "--store", store], env)
    print(_line(f"sqlite: plan --count {PLAN_COUNT}", planned), flush=True)
    by_pages = _plan_by_pages(store, env)
    print(_line(f"sqlite: plan --count {PAGES_PLAN_COUNT} --balance pages", by_pages), flush=True)
    missed = []
    for what, m in (("import", imported), ("re-import", again)):
        if m.code not in (0, 1):  # 1: the bad lines written on purpose
            missed.append(f"sqlite {what} exited {m.code}: {m.stderr[-300:]}")
        if m.seconds > IMPORT_SECONDS or m.peak_mb > IMPORT_MB:
            missed.append(f"sqlite {what}: over {IMPORT_SECONDS:g} s or {IMPORT_MB:g} MB")
    if planned.code != 0 or planned.seconds > PLAN_SECONDS:
        missed.append(f"sqlite plan: exit {planned.code}, {planned.seconds:.1f} s")
    if by_pages.code != 0:
        missed.append(f"sqlite plan by pages: exit {by_pages.code}: {by_pages.stderr[-300:]}")
    return missed


def _plan_by_pages(store: str, env: dict[str, str]) -> Measured:
    """``partitions plan --count PAGES_PLAN_COUNT --balance pages`` on ``store`` (its users
    imported with no platform: the plan takes the legacy site's from the environment)."""
    args = ["partitions", "plan", "--count", str(PAGES_PLAN_COUNT), "--balance", "pages"]
    return run_cli([*args, "--store", store], {**env, "FRIENDSCRAPE_SOURCE": PAGES_SOURCE})


def _jobs(client: object) -> int:
    return sum(1 for _ in client.list_jobs(all_users=True))  # type: ignore[attr-defined]


def bench_bigquery(users: int, work: Path) -> list[str]:
    """Import and plan on the local BigQuery server; the missed targets."""
    from google.api_core.client_options import ClientOptions  # noqa: PLC0415
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import bigquery  # noqa: PLC0415

    from bqemu import running_emulator  # noqa: PLC0415

    users_csv = work / "bq_users.csv"
    write_users(users_csv, users)
    with running_emulator(work / "bqemulator.log") as emulator:
        client = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=emulator.endpoint),
        )
        store = f"bigquery://{PROJECT}/bench_{uuid.uuid4().hex[:8]}"
        env = _env(FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint)
        # The tables are created by a first, empty import, so the count below is the
        # import's jobs alone.
        empty = work / "empty.csv"
        empty.write_text("user_id,screen_name\n", encoding="utf-8")
        run_cli(["users", "import", str(empty), "--store", store], env)
        before = _jobs(client)
        imported = run_cli(["users", "import", str(users_csv), "--store", store], env)
        jobs = _jobs(client) - before
        print(_line(f"bigquery (emulator): import {users:,} users", imported), flush=True)
        planned = run_cli(["partitions", "plan", "--count", str(PLAN_COUNT), "--store", store], env)
        print(_line(f"bigquery (emulator): plan --count {PLAN_COUNT}", planned), flush=True)
        by_pages = _plan_by_pages(store, env)
        what = f"bigquery (emulator): plan --count {PAGES_PLAN_COUNT} --balance pages"
        print(_line(what, by_pages), flush=True)
        print(
            f"bigquery: the import of {users:,} users sent {jobs} jobs; the count does not "
            "grow with the users, so an import of 3,600,000 users sends the same "
            f"{jobs} (the 5,000-user MERGEs it replaces sent 1,440)",
            flush=True,
        )
        client.close()
    missed = []
    if imported.code not in (0, 1) or planned.code != 0 or by_pages.code != 0:
        errors = "".join(m.stderr[-300:] for m in (imported, planned, by_pages))
        missed.append(f"bigquery import/plan failed: {errors}")
    if imported.peak_mb > IMPORT_MB:
        missed.append(f"bigquery import: {imported.peak_mb:.0f} MB over {IMPORT_MB:g} MB")
    if jobs > 3:
        missed.append(f"bigquery import sent {jobs} jobs, expected 3")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-users", type=int, default=3_600_000)
    parser.add_argument("--bigquery-users", type=int, default=100_000, help="0: skip BigQuery")
    args = parser.parse_args()
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="friendscrape-import-") as tmp:
        work = Path(tmp)
        if args.sqlite_users:
            missed += bench_sqlite(args.sqlite_users, work)
        if args.bigquery_users:
            missed += bench_bigquery(args.bigquery_users, work)
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
