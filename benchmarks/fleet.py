"""An elastic fleet against a static plan: 10 workers as separate processes (simulator
figures; SQLite store, or BigQuery on the local BigQuery-compatible server).

The job: USERS users with heavy-tailed following counts (the simulator's lognormal,
median about 300, lists capped at max_friends), collected from the Bluesky simulator (100
accounts a page). Nine workers fetch from a simulator answering each page in FAST s; the
tenth from a second simulator of the same graph answering in 3x that (the seed's uneven
servers). Three runs, each on a fresh copy of the imported store:

1. static: ``partitions plan --count 10`` and ``run --partition K`` per worker;
2. next: ``partitions plan --count 100 --balance pages`` and ``run --partition next``;
3. next again, one fast worker SIGKILLed once half the users are saved.

On BigQuery (``--store bigquery``: the local server the test suite starts; the same plan
of 100, 10 partitions a worker, at 1,500 users) each run has its own dataset, the users
imported into each, and results are written with
``FRIENDSCRAPE_BIGQUERY_WRITE_API=insert_all``: the local server stops answering Storage
Write API calls when several processes write through it at once (real BigQuery does
not). Its statements take about a second on a busy machine, so leases are renewed (and
samples written) every 10 s, a third of the 30 s ttl: each renewal and sample is a DML
statement on shared tables. Results are read back with the BigQuery client itself.

The ideal is the job's pages over the fleet's measured pages per second (run 2: each
worker's pages over its busy time, from its first claim to its last partition done,
summed over workers; the static run's ideal likewise from its own workers, the killed
run's is the next run's). A makespan runs from the first claim (or lease) of any worker to
the last partition completed. Targets: next at most 1.15x the ideal; the killed run at
most 1.3x the ideal plus the lease ttl, every user's row identical to the static run's,
and no page fetched twice beyond the killed worker's partition. Exit 1 on a miss.

    python benchmarks/fleet.py
    python benchmarks/fleet.py --store bigquery              # 1,500 users, plan of 100
    python benchmarks/fleet.py --keep                        # keep the worker logs
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
USERS = 1500  # SQLite; --users
BIGQUERY_USERS = 1500
PARTITIONS = 100  # the next runs' plan; --partitions
BIGQUERY_PARTITIONS = 100
PROJECT = "test-project"
MEAN_FRIENDS = 520.0  # the simulator's lognormal: median about 300
FAST = 0.1  # seconds a page, nine workers
SLOW = 3 * FAST  # the tenth worker's upstream
WORKERS = 10
CONCURRENCY = 2
LEASE_TTL = 10.0
BLUESKY_PAGE = 100  # follows a page, as the plan weighs users
MAX_FRIENDS = 2000  # the workers' and the plan's max_friends (the default): a list's end
TARGET_NEXT = 1.15
TARGET_KILLED = 1.3

BIN = Path(sys.executable).parent / "friendscrape"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("FRIENDSCRAPE_")},
    "FRIENDSCRAPE_LOG_FORMAT": "json",
    "FRIENDSCRAPE_LEASE_TTL": str(LEASE_TTL),
    "FRIENDSCRAPE_LEASE_HEARTBEAT": "2",
    "FRIENDSCRAPE_FLUSH_INTERVAL": "0.5",
}
BIGQUERY_ENV = {
    "FRIENDSCRAPE_BIGQUERY_WRITE_API": "insert_all",  # see the module docstring
    "FRIENDSCRAPE_LEASE_TTL": "30",
    "FRIENDSCRAPE_LEASE_HEARTBEAT": "10",
    "FRIENDSCRAPE_WRITE_TIMEOUT": "30",
    "FRIENDSCRAPE_STORE_RETRY_DEADLINE": "60",
    # Results saved every 2 s (the default), not every 0.5 s: each save is a call the
    # local server serves one at a time, beside the claims' statements.
    "FRIENDSCRAPE_FLUSH_INTERVAL": "2",
}


class Store:
    """Where a run's results go, and how the benchmark reads them back: a SQLite file
    per run (a copy of the imported store), or a dataset per run on the local server."""

    def __init__(self, work: Path, endpoint: str | None) -> None:
        self.work, self.endpoint = work, endpoint
        self.env = dict(ENV)
        if endpoint is not None:
            self.env.update(BIGQUERY_ENV, FRIENDSCRAPE_BIGQUERY_ENDPOINT=endpoint)
        self.datasets: dict[str, str] = {}

    @property
    def kind(self) -> str:
        return "sqlite" if self.endpoint is None else "bigquery"

    def url(self, name: str) -> str:
        if self.endpoint is None:
            return f"sqlite:///{self.work / f'{name}.db'}"
        return f"bigquery://{PROJECT}/{self.datasets[name]}"

    def fresh(self, name: str, users_csv: Path, *plan: str) -> None:
        """The imported users, planned: a copy of the base file, or a new dataset."""
        if self.endpoint is None:
            base = self.work / "base.db"
            if not base.exists():
                _cli(self, "base", "users", "import", str(users_csv), "--source", "bluesky")
            shutil.copy(base, self.work / f"{name}.db")
        else:
            self.datasets[name] = f"fleet_{name}_{uuid.uuid4().hex[:8]}"
            _cli(self, name, "users", "import", str(users_csv), "--source", "bluesky")
        _cli(self, name, "partitions", "plan", *plan)
        (self.work / name).mkdir()

    def _query(self, name: str, sql: str) -> list[dict[str, Any]]:
        from google.api_core.client_options import ClientOptions  # noqa: PLC0415
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
        from google.cloud import bigquery  # noqa: PLC0415

        client = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )
        try:
            table = f"`{PROJECT}.{self.datasets[name]}.user_friends`"
            job = client.query(sql.format(table=table), retry=None, job_retry=None)
            return [dict(row.items()) for row in job.result(timeout=120)]
        finally:
            client.close()

    def plan(self, name: str) -> dict[str, int]:
        """Each user's planned partition."""
        if self.endpoint is not None:
            table = f"`{PROJECT}.{self.datasets[name]}.partitions`"
            sql = f"SELECT user_id, `partition` AS part FROM {table}"
            return {str(r["user_id"]): int(r["part"]) for r in self._query(name, sql)}
        conn = sqlite3.connect(f"file:{self.work / f'{name}.db'}?mode=ro", uri=True, timeout=5)
        try:
            found = conn.execute("SELECT user_id, partition FROM users").fetchall()
        finally:
            conn.close()
        return {str(user_id): int(part) for user_id, part in found}

    def saved(self, name: str) -> int:
        if self.endpoint is not None:
            try:
                return int(str(self._query(name, "SELECT COUNT(*) AS n FROM {table}")[0]["n"]))
            except Exception:  # noqa: BLE001 - not made yet, or the server is busy: not yet
                return 0
        conn = sqlite3.connect(f"file:{self.work / f'{name}.db'}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    def rows(self, name: str) -> tuple[dict[str, tuple[Any, ...]], int]:
        """Every user's (status, friend count, names, ids), and the users with more than
        one row."""
        sql = "SELECT user_id, status, friend_count, friend_names, friend_ids FROM {table}"
        found: list[tuple[Any, ...]]
        if self.endpoint is not None:
            found = [
                (
                    r["user_id"],
                    r["status"],
                    r["friend_count"],
                    tuple(r["friend_names"] or ()),
                    tuple(r["friend_ids"] or ()),
                )
                for r in self._query(name, sql)
            ]
        else:
            conn = sqlite3.connect(self.work / f"{name}.db")
            try:
                found = conn.execute(sql.format(table="user_friends")).fetchall()
            finally:
                conn.close()
        twice = sum(1 for n in Counter(r[0] for r in found).values() if n > 1)
        return {r[0]: tuple(r[1:]) for r in found}, twice


@contextlib.contextmanager
def _server(kind: str, work: Path) -> Iterator[str | None]:
    """The local BigQuery-compatible server's endpoint (None for SQLite)."""
    if kind == "sqlite":
        yield None
        return
    sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's starter of the server
    from bqemu import running_emulator  # noqa: PLC0415

    with running_emulator(work / "bqemulator.log") as emulator:
        yield emulator.endpoint


def _start_simulator(
    latency: float, users: int, users_csv: Path | None, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    args = [str(BIN), "simulate", "--users", str(users), "--mean-friends", str(MEAN_FRIENDS)]
    args += ["--latency", str(latency), "--port", "0", "--users-format", "bluesky"]
    if users_csv is not None:
        args += ["--write-users", str(users_csv)]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"simulator.ready"' in line:
                return proc, str(json.loads(line)["base_url"])
        time.sleep(0.1)
    proc.terminate()
    msg = f"the simulator did not start: {log.read_text()[-500:]}"
    raise RuntimeError(msg)


def _requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=10) as response:  # noqa: S310
        stats = json.load(response)
    return int(stats["pages"])


def _cli(store: Store, name: str, *args: str) -> None:
    done = subprocess.run(
        [str(BIN), *args, "--store", store.url(name)],
        env=store.env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if done.returncode != 0:
        msg = f"friendscrape {args[0]} {args[1]} exited {done.returncode}: {done.stderr[-500:]!r}"
        raise RuntimeError(msg)


def _plan_pages(store: Store, name: str, users_csv: Path) -> tuple[list[int], int]:
    """Each partition's expected pages as ``--balance pages`` weighs them: a user weighs
    ceil(min(following_count, max_friends) / 100) + 1 (Bluesky's page size), the median
    known count's weight where the users file gives none; and how many users have a
    count."""
    with users_csv.open(encoding="utf-8", newline="") as f:
        listed = [(r["user_id"], r["following_count"]) for r in csv.DictReader(f)]
    known = sorted(int(count) for _, count in listed if count)
    median = known[len(known) // 2] if known else 0
    pages: Counter[int] = Counter()
    planned = store.plan(name)
    for user_id, count in listed:
        names = min(int(count or median), MAX_FRIENDS)
        pages[planned[user_id]] += -(-names // BLUESKY_PAGE) + 1 if known else 1
    return list(pages.values()), len(known)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def events(self) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found


def _at(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _start_workers(store: Store, name: str, urls: list[str], partitions: list[str]) -> list[Worker]:
    workers = []
    for i, (url, part) in enumerate(zip(urls, partitions, strict=True)):
        log = store.work / name / f"worker{i + 1}.log"
        args = [str(BIN), "run", "--store", store.url(name), "--partition", part]
        args += ["--base-url", url, "--concurrency", str(CONCURRENCY)]
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=store.env, stdout=out, stderr=subprocess.STDOUT)
        workers.append(Worker(proc, log))
    return workers


def _makespan(workers: list[Worker]) -> float:
    events = [e for w in workers for e in w.events()]
    starts = [_at(e) for e in events if e.get("event") in {"claim.taken", "lease.taken"}]
    ends = [_at(e) for e in events if e.get("event") == "partition.complete"]
    return max(ends) - min(starts)


def _fleet_rate(workers: list[Worker]) -> tuple[float, int]:
    """Pages per second summed over workers (each its pages over its busy time), pages."""
    rate, pages = 0.0, 0
    for worker in workers:
        events = worker.events()
        claims = [_at(e) for e in events if e.get("event") in {"claim.taken", "lease.taken"}]
        done = [e for e in events if e.get("event") == "partition.complete"]
        if not claims or not done:
            continue
        mine = sum(int(str(e["pages"])) for e in done)
        busy = max(_at(e) for e in done) - min(claims)
        pages += mine
        rate += mine / busy if busy > 0 else 0.0
    return rate, pages


def _run(store: Store, name: str, urls: list[str], parts: list[str]) -> list[Worker]:
    workers = _start_workers(store, name, urls, parts)
    for worker in workers:
        worker.proc.wait(timeout=1800)
    return workers


def _killed_run(store: Store, urls: list[str], users: int) -> tuple[list[Worker], Worker, int]:
    workers = _start_workers(store, "killed", urls, ["next"] * WORKERS)
    victim = workers[1]  # a fast worker
    while store.saved("killed") < users // 2:
        time.sleep(0.2 if store.endpoint is None else 1.0)
    held = [e for e in victim.events() if e.get("event") == "claim.taken"]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    for worker in workers:
        worker.proc.wait(timeout=1800)
    return workers, victim, int(str(held[-1]["partition"])) if held else 0


def _held_seconds(events: list[dict[str, object]]) -> float:
    """Seconds the worker held at least one partition (claim to partition.complete)."""
    taken = {int(str(e["partition"])): _at(e) for e in events if e.get("event") == "claim.taken"}
    spans = sorted(
        (taken[int(str(e["partition"]))], _at(e))
        for e in events
        if e.get("event") == "partition.complete" and int(str(e["partition"])) in taken
    )
    held, reach = 0.0, float("-inf")
    for start, end in spans:
        if end > reach:
            held += end - max(start, reach)
            reach = end
    return held


def _tail_lines(workers: list[Worker], slow: Worker) -> list[str]:
    """Per worker of a next run: its partitions and pages, when it first claimed and when
    it ended (seconds from the fleet's first claim), how long it held no partition before
    its end (idle, its start-up included), and what its claims met, so a run's tail can
    be told apart: the slow worker's last partition, a claim left to others, claim
    races."""
    events = {id(w): w.events() for w in workers}
    starts = [
        _at(e)
        for w in workers
        for e in events[id(w)]
        if e.get("event") in {"claim.taken", "lease.taken"}
    ]
    if not starts:
        return []
    start = min(starts)
    lines = []
    for i, worker in enumerate(workers):
        mine = events[id(worker)]
        done = [e for e in mine if e.get("event") == "partition.complete"]
        if not done:
            continue
        end = max(_at(e) for e in done) - start
        first = min(_at(e) for e in mine if e.get("event") == "claim.taken") - start
        counts = Counter(str(e.get("event")) for e in mine)
        last = max(done, key=_at)
        took = [float(str(e["seconds"])) for e in mine if e.get("event") == "claim.taken"]
        claims = (
            f"claims took {sum(took) / len(took):.1f}s (max {max(took):.1f}s); " if took else ""
        )
        tag = " (slow upstream)" if worker is slow else ""
        lines.append(
            f"    worker {i + 1}{tag}: {len(done)} partitions, "
            f"{sum(int(str(e['pages'])) for e in done)} pages, first claim at {first:.1f}s, "
            f"ended at {end:.1f}s, idle {end - _held_seconds(mine):.1f}s; last partition "
            f"{last.get('partition')} ({last.get('pages')} pages) ended at "
            f"{_at(last) - start:.1f}s; {claims}claims ahead {counts['claim.ahead']}, lost "
            f"{counts['claim.taken_by_another']}, waited {counts['claim.waiting']}, "
            f"left to others {counts['claim.left_to_others']}"
        )
    return lines


_VERDICTS = ("claim.ahead_verdict", "claim.left_to_others", "claim.recheck", "claim.given_back")
_FIGURES = (
    "leave",
    "own_seconds",
    "others_finish_seconds",
    "own_pace",
    "own_pace_theirs",
    "others_pace",
    "others_fleet_pace",
    "others_held_pace",
    "own_left",
    "work",
    "free",
    "free_work",
    "workers",
    "waiting",
)


def _verdict_lines(workers: list[Worker], slow: Worker) -> list[str]:
    """The slow worker's leave-rule verdicts with their figures (seconds from the
    fleet's first claim): whether each claim ahead, and each re-check before a claimed
    partition starts, saw the others' pace, and how far apart the two ends were."""
    starts = [
        _at(e)
        for w in workers
        for e in w.events()
        if e.get("event") in {"claim.taken", "lease.taken"}
    ]
    if not starts:
        return []
    start = min(starts)
    lines = []
    for e in slow.events():
        if e.get("event") in _VERDICTS:
            figures = " ".join(f"{k}={e[k]}" for k in _FIGURES if k in e)
            where = f" partition {e['claimed']}" if "claimed" in e else ""
            lines.append(f"      {_at(e) - start:5.1f}s {e['event']}{where}: {figures}")
    return lines


def _pages_by_partition(workers: list[Worker]) -> list[int]:
    """Pages each partition of a run took (from its workers' partition.complete)."""
    return [
        int(str(e["pages"]))
        for w in workers
        for e in w.events()
        if e.get("event") == "partition.complete"
    ]


def _partition_pages(workers: list[Worker], part: int) -> int:
    """Pages partition ``part`` took in the next run (the killed run's plan is the same)."""
    return sum(
        int(str(e["pages"]))
        for w in workers
        for e in w.events()
        if e.get("event") == "partition.complete" and e.get("partition") == part
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "bigquery"), default="sqlite")
    parser.add_argument("--users", type=int, help=f"{USERS} (SQLite), {BIGQUERY_USERS} (BigQuery)")
    parser.add_argument(
        "--partitions",
        type=int,
        help=f"the next runs' plan: {PARTITIONS} (SQLite), {BIGQUERY_PARTITIONS} (BigQuery)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (worker logs) and say where"
    )
    options = parser.parse_args()
    bigquery = options.store == "bigquery"
    users = options.users or (BIGQUERY_USERS if bigquery else USERS)
    count = options.partitions or (BIGQUERY_PARTITIONS if bigquery else PARTITIONS)
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    with _server(options.store, work) as endpoint:
        failures = _bench(Store(work, endpoint), users, count)
    if options.keep:
        print(f"  kept: worker logs of each run in {work}/<run>/worker<N>.log")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


@dataclass
class Measured:
    """The three runs' workers and what the simulators counted."""

    static: list[Worker]
    claiming: list[Worker]
    survivors: list[Worker]
    held: int  # the killed worker's last claimed partition
    fetched_next: int
    fetched_killed: int
    plan_pages: list[int]  # the next runs' plan: each partition's expected pages
    known: int  # users whose following count the users file gives


def _measure(store: Store, users: int, count: int) -> Measured:
    users_csv = store.work / "users.csv"
    fast, fast_url = _start_simulator(FAST, users, users_csv, store.work / "fast.log")
    slow, slow_url = _start_simulator(SLOW, users, None, store.work / "slow.log")
    urls = [slow_url] + [fast_url] * (WORKERS - 1)

    def requests() -> int:
        return _requests(fast_url) + _requests(slow_url)

    try:
        store.fresh("static", users_csv, "--count", str(WORKERS))
        static = _run(store, "static", urls, [str(k) for k in range(1, WORKERS + 1)])
        store.fresh("next", users_csv, "--count", str(count), "--balance", "pages")
        plan_pages, known = _plan_pages(store, "next", users_csv)
        before = requests()
        claiming = _run(store, "next", urls, ["next"] * WORKERS)
        fetched_next = requests() - before
        store.fresh("killed", users_csv, "--count", str(count), "--balance", "pages")
        before = requests()
        everyone, victim, held = _killed_run(store, urls, users)
        fetched_killed = requests() - before
    finally:
        fast.terminate()
        slow.terminate()
    survivors = [w for w in everyone if w is not victim]
    return Measured(
        static, claiming, survivors, held, fetched_next, fetched_killed, plan_pages, known
    )


def _bench(store: Store, users: int, count: int) -> int:
    m = _measure(store, users, count)
    rate, pages = _fleet_rate(m.claiming)
    ideal = pages / rate
    static_rate, static_pages = _fleet_rate(m.static)
    static_ideal = static_pages / static_rate
    static_span, next_span = _makespan(m.static), _makespan(m.claiming)
    killed_span = _makespan(m.survivors)
    truth, _ = store.rows("static")
    where = " on the local BigQuery-compatible server, results by insert_all"
    print(
        f"simulator figures (local simulator, {store.kind} store"
        f"{where if store.endpoint else ''}, one machine shared with others):"
    )
    print(
        f"  job: {users} users, {pages} pages fetched by the next run ({m.fetched_next} requests)"
    )
    print(
        f"  fleet: {WORKERS} workers, concurrency {CONCURRENCY}, a page in {FAST:g}s"
        f" ({SLOW:g}s for one worker)"
    )
    print(f"  next run's fleet rate {rate:.1f} pages/s: ideal {ideal:.1f}s")
    taken = _pages_by_partition(m.claiming)
    print(
        f"  plan --count {count} --balance pages: expected pages a partition "
        f"{min(m.plan_pages)}-{max(m.plan_pages)} (users with a following count: "
        f"{m.known}); fetched in the next run {min(taken)}-{max(taken)}"
    )
    print(
        f"  static plan --count {WORKERS} + --partition K: {static_span:.1f}s = "
        f"{static_span / static_ideal:.2f}x its ideal ({static_pages} pages at "
        f"{static_rate:.1f} pages/s: {static_ideal:.1f}s)"
    )
    print(
        f"  plan --count {count} --balance pages + --partition next: {next_span:.1f}s = "
        f"{next_span / ideal:.2f}x ideal ({next_span / static_ideal:.2f}x the static run's "
        "ideal: each claim's statements slow a fleet on a busy store)"
    )
    print("\n".join(_tail_lines(m.claiming, m.claiming[0])))
    print("    the slow worker's verdicts:")
    print("\n".join(_verdict_lines(m.claiming, m.claiming[0])))
    ttl = float(store.env["FRIENDSCRAPE_LEASE_TTL"])
    print(
        f"  next with one worker SIGKILLed halfway: {killed_span:.1f}s = "
        f"{killed_span / ideal:.2f}x the next run's ideal (lease ttl {ttl:g}s)"
    )
    print("\n".join(_tail_lines(m.survivors, m.survivors[0])))
    print("    the slow worker's verdicts:")
    print("\n".join(_verdict_lines(m.survivors, m.survivors[0])))
    extra = m.fetched_killed - m.fetched_next
    allowed = _partition_pages(m.claiming, m.held)
    print(
        f"  killed run: {m.fetched_killed} requests, {extra} more than the next run; the "
        f"killed worker's partition {m.held} took {allowed} pages in the next run"
    )
    failures = 0

    def verdict(ok: bool, text: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {text}")

    codes = [w.proc.returncode for w in m.survivors]
    next_rows, next_twice = store.rows("next")
    killed_rows, killed_twice = store.rows("killed")
    verdict(all(w.proc.returncode == 0 for w in m.static + m.claiming), "every worker exited 0")
    verdict(next_span / ideal <= TARGET_NEXT, f"next makespan <= {TARGET_NEXT}x ideal")
    verdict(next_rows == truth and len(truth) == users, "next: every list as static's")
    verdict(all(c == 0 for c in codes), "killed run: every survivor exited 0")
    verdict(killed_rows == truth, "killed run: every list exact (as static's)")
    verdict(next_twice == killed_twice == 0, "next and killed runs: every user one row")
    verdict(
        killed_span <= TARGET_KILLED * ideal + ttl,
        f"killed run makespan <= {TARGET_KILLED}x ideal + lease ttl",
    )
    verdict(extra <= allowed, "killed run: nothing fetched twice beyond its partition")
    return failures


if __name__ == "__main__":
    sys.exit(main())
