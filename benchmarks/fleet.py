"""An elastic fleet against a static plan: 10 workers as separate processes (simulator
figures, SQLite store).

The job: USERS users with heavy-tailed following counts (the simulator's lognormal,
median about 300, lists capped at max_friends), collected from the Bluesky simulator (100
accounts a page). Nine workers fetch from a simulator answering each page in FAST s; the
tenth from a second simulator of the same graph answering in 3x that (the seed's uneven
servers). Three runs, each on a fresh copy of the imported store:

1. static: ``partitions plan --count 10`` and ``run --partition K`` per worker;
2. next: ``partitions plan --count 100 --balance pages`` and ``run --partition next``;
3. next again, one fast worker SIGKILLed once half the users are saved.

The ideal is the job's pages over the fleet's measured pages per second (run 2: each
worker's pages over its busy time, from its first claim to its last partition done,
summed over workers; the static run's ideal likewise from its own workers, the killed
run's is the next run's). A makespan runs from the first claim (or lease) of any worker to
the last partition completed. Targets: next at most 1.15x the ideal; the killed run at
most 1.3x the ideal plus the lease ttl, every user's row identical to the static run's,
and no page fetched twice beyond the killed worker's partition. Exit 1 on a miss.

    python benchmarks/fleet.py
"""

from __future__ import annotations

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

USERS = 1500
MEAN_FRIENDS = 520.0  # the simulator's lognormal: median about 300
FAST = 0.1  # seconds a page, nine workers
SLOW = 3 * FAST  # the tenth worker's upstream
WORKERS = 10
CONCURRENCY = 2
LEASE_TTL = 10.0
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


def _start_simulator(
    latency: float, users_csv: Path | None, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    args = [str(BIN), "simulate", "--users", str(USERS), "--mean-friends", str(MEAN_FRIENDS)]
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


def _cli(db: Path, *args: str) -> None:
    subprocess.run(
        [str(BIN), *args, "--store", f"sqlite:///{db}"],
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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


def _start_workers(db: Path, urls: list[str], partitions: list[str], logs: Path) -> list[Worker]:
    workers = []
    for i, (url, part) in enumerate(zip(urls, partitions, strict=True)):
        log = logs / f"worker{i + 1}.log"
        args = [str(BIN), "run", "--store", f"sqlite:///{db}", "--partition", part]
        args += ["--base-url", url, "--concurrency", str(CONCURRENCY)]
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        workers.append(Worker(proc, log))
    return workers


def _saved(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _rows(db: Path) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        found = conn.execute(
            "SELECT user_id, status, friend_count, friend_names, friend_ids FROM user_friends"
        ).fetchall()
    finally:
        conn.close()
    return {r[0]: tuple(r[1:]) for r in found}


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


def _run(db: Path, urls: list[str], parts: list[str], logs: Path) -> list[Worker]:
    workers = _start_workers(db, urls, parts, logs)
    for worker in workers:
        worker.proc.wait(timeout=900)
    return workers


def _killed_run(db: Path, urls: list[str], logs: Path) -> tuple[list[Worker], Worker, int]:
    workers = _start_workers(db, urls, ["next"] * WORKERS, logs)
    victim = workers[1]  # a fast worker
    while _saved(db) < USERS // 2:
        time.sleep(0.2)
    held = [e for e in victim.events() if e.get("event") == "claim.taken"]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    for worker in workers:
        worker.proc.wait(timeout=900)
    return workers, victim, int(str(held[-1]["partition"])) if held else 0


def _partition_pages(workers: list[Worker], part: int) -> int:
    """Pages partition ``part`` took in the next run (the killed run's plan is the same)."""
    return sum(
        int(str(e["pages"]))
        for w in workers
        for e in w.events()
        if e.get("event") == "partition.complete" and e.get("partition") == part
    )


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    users_csv = work / "users.csv"
    fast, fast_url = _start_simulator(FAST, users_csv, work / "fast.log")
    slow, slow_url = _start_simulator(SLOW, None, work / "slow.log")
    urls = [slow_url] + [fast_url] * (WORKERS - 1)
    failures = 0
    try:
        base = work / "base.db"
        _cli(base, "users", "import", str(users_csv), "--source", "bluesky")

        def fresh(name: str, *plan: str) -> Path:
            db = work / f"{name}.db"
            shutil.copy(base, db)
            _cli(db, "partitions", "plan", *plan)
            (work / name).mkdir()
            return db

        static_db = fresh("static", "--count", str(WORKERS))
        static = _run(static_db, urls, [str(k) for k in range(1, WORKERS + 1)], work / "static")
        next_db = fresh("next", "--count", "100", "--balance", "pages")
        before = _requests(fast_url) + _requests(slow_url)
        claiming = _run(next_db, urls, ["next"] * WORKERS, work / "next")
        fetched_next = _requests(fast_url) + _requests(slow_url) - before
        rate, pages = _fleet_rate(claiming)
        ideal = pages / rate
        static_rate, static_pages = _fleet_rate(static)
        static_ideal = static_pages / static_rate
        static_span, next_span = _makespan(static), _makespan(claiming)

        killed_db = fresh("killed", "--count", "100", "--balance", "pages")
        before = _requests(fast_url) + _requests(slow_url)
        survivors_and_victim, victim, held = _killed_run(killed_db, urls, work / "killed")
        fetched_killed = _requests(fast_url) + _requests(slow_url) - before
        survivors = [w for w in survivors_and_victim if w is not victim]
        killed_span = _makespan(survivors)
        codes = [w.proc.returncode for w in survivors]
    finally:
        fast.terminate()
        slow.terminate()

    truth = _rows(static_db)
    print("simulator figures (local simulator, SQLite store, one machine shared with others):")
    print(f"  job: {USERS} users, {pages} pages fetched by the next run ({fetched_next} requests)")
    print(
        f"  fleet: {WORKERS} workers, concurrency {CONCURRENCY}, a page in {FAST:g}s"
        f" ({SLOW:g}s for one worker)"
    )
    print(f"  next run's fleet rate {rate:.1f} pages/s: ideal {ideal:.1f}s")
    print(
        f"  static plan --count 10 + --partition K: {static_span:.1f}s = "
        f"{static_span / static_ideal:.2f}x its ideal ({static_pages} pages at "
        f"{static_rate:.1f} pages/s: {static_ideal:.1f}s)"
    )
    print(
        f"  plan --count 100 --balance pages + --partition next: {next_span:.1f}s = "
        f"{next_span / ideal:.2f}x ideal"
    )
    print(
        f"  next with one worker SIGKILLed halfway: {killed_span:.1f}s = "
        f"{killed_span / ideal:.2f}x the next run's ideal (lease ttl {LEASE_TTL:g}s)"
    )
    extra = fetched_killed - fetched_next
    allowed = _partition_pages(claiming, held)
    print(
        f"  killed run: {fetched_killed} requests, {extra} more than the next run; the "
        f"killed worker's partition {held} took {allowed} pages in the next run"
    )

    def verdict(ok: bool, text: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {text}")

    verdict(all(w.proc.returncode == 0 for w in static + claiming), "every worker exited 0")
    verdict(next_span / ideal <= TARGET_NEXT, f"next makespan <= {TARGET_NEXT}x ideal")
    verdict(_rows(next_db) == truth and len(truth) == USERS, "next: every list as static's")
    verdict(all(c == 0 for c in codes), "killed run: every survivor exited 0")
    verdict(_rows(killed_db) == truth, "killed run: every list exact (as static's)")
    verdict(
        killed_span <= TARGET_KILLED * ideal + LEASE_TTL,
        f"killed run makespan <= {TARGET_KILLED}x ideal + lease ttl",
    )
    verdict(extra <= allowed, "killed run: nothing fetched twice beyond its partition")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
