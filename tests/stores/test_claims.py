"""`run --partition next` (issue 24): workers claim partitions on demand, one holder per
partition, a SIGKILLed holder's partition taken over, and every worker ending once
nothing is left. Every worker a separate process, on both stores."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.simulator import SimConfig
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 60

# A short lease, so a waiting worker looks again within a second.
LEASE_ENV = {"FRIENDSCRAPE_LEASE_TTL": "4", "FRIENDSCRAPE_LEASE_HEARTBEAT": "0.5"}


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]

    def args(self, *args: str) -> list[str]:
        return [*args, "--store", self.url]

    async def cli(self, *args: str) -> tuple[int, CliRun]:
        return await run_cli(self.args(*args), env=self.env, timeout=120)

    async def worker(self, sim: SimProcess, *extra: str) -> CliRun:
        args = ["run", "--partition", "next", "--source", "twitter-mobile"]
        args += ["--base-url", sim.base_url, *extra]
        return await start_cli(self.args(*args), env=self.env)


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        return Job(f"sqlite:///{tmp_path / 'job.db'}", clean_env(**LEASE_ENV))
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    # The local server answers a statement in about a second on a busy machine: a lease
    # renewed every 2s, and writes given their time. Results by insert_all: the local
    # server's Storage Write API stops answering (every call times out) when several
    # processes write through it at once, numbered runs as much as claiming ones.
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_WRITE_API="insert_all",
        FRIENDSCRAPE_LEASE_TTL="30",
        FRIENDSCRAPE_LEASE_HEARTBEAT="2",
        FRIENDSCRAPE_WRITE_TIMEOUT="30",
        FRIENDSCRAPE_STORE_RETRY_DEADLINE="60",
    )
    return Job(f"bigquery://test-project/{dataset}", env)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    sim = start_simulator(SimConfig(users=USERS, mean_friends=20.0, latency=0.02))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimProcess]:
    """Pages slow enough that a worker of one user at a time is still collecting when
    it is killed."""
    sim = start_simulator(SimConfig(users=USERS, mean_friends=20.0, latency=1.0))
    try:
        yield sim
    finally:
        sim.stop()


async def _planned(job: Job, tmp_path: Path, count: int) -> None:
    accounts = list(SimConfig(users=USERS, mean_friends=20.0).make_graph().accounts())
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name\n" + "".join(f"{a.user_id},{a.screen_name}\n" for a in accounts),
        encoding="utf-8",
    )
    code, imported = await job.cli("users", "import", str(users), "--source", "twitter-mobile")
    assert code == 0, imported.tail()
    code, planned = await job.cli("partitions", "plan", "--count", str(count))
    assert code == 0, planned.tail()


def _claimed(runs: list[CliRun]) -> Counter[int]:
    return Counter(e["partition"] for run in runs for e in run.named("claim.taken"))


async def _nothing_left(job: Job, sim: SimProcess) -> None:
    """A last worker finds every partition done: it claims none and exits 0."""
    last = await job.worker(sim)
    assert await last.wait(120) == 0, last.tail()
    assert last.named("claim.none_left"), last.tail()
    assert not last.named("claim.taken"), last.tail()
    assert not last.named("lease.taken"), last.tail()


async def test_racing_workers_claim_each_partition_once_and_end_when_none_is_left(
    job: Job, tmp_path: Path, sim: SimProcess
) -> None:
    await _planned(job, tmp_path, 6)
    workers = await asyncio.gather(*(job.worker(sim) for _ in range(3)))
    codes = await asyncio.gather(*(w.wait(240) for w in workers))
    assert codes == [0, 0, 0], [w.tail() for w in workers]
    claimed = _claimed(workers)
    assert claimed == Counter(range(1, 7)), claimed  # each partition once, by one worker
    for worker in workers:
        assert worker.named("claim.none_left"), worker.tail()
        assert "Traceback" not in worker.stderr, worker.stderr
    users = sum(e["users"] for w in workers for e in w.named("partition.complete"))
    assert users == USERS
    await _nothing_left(job, sim)


async def test_workers_racing_for_one_partition_leave_it_one_holder(
    job: Job, tmp_path: Path, sim: SimProcess
) -> None:
    await _planned(job, tmp_path, 1)
    workers = await asyncio.gather(*(job.worker(sim) for _ in range(4)))
    codes = await asyncio.gather(*(w.wait(240) for w in workers))
    assert codes == [0, 0, 0, 0], [w.tail() for w in workers]
    assert _claimed(workers) == Counter({1: 1})
    collected = [e["users"] for w in workers for e in w.named("partition.complete")]
    assert collected == [USERS], collected


async def test_a_sigkilled_holder_is_taken_over_by_a_waiting_worker(
    job: Job, tmp_path: Path, slow_sim: SimProcess, sim: SimProcess
) -> None:
    await _planned(job, tmp_path, 2)
    doomed = await job.worker(slow_sim, "--concurrency", "1")
    taken = await doomed.wait_event("claim.taken", timeout=120)
    assert taken["partition"] == 1
    await doomed.wait_event("writer.flush", timeout=60)

    # The second worker collects partition 2, then waits: partition 1 is held, live.
    survivor = await job.worker(sim)
    await survivor.wait_event("claim.waiting", timeout=120)
    assert _claimed([survivor]) == Counter({2: 1})

    # status shows the fleet: partition 2 done, partition 1 held by the doomed worker.
    code, status = await job.cli("status")
    assert code == 0, status.tail()
    lines = [line.strip() for line in status.stdout_other]
    assert "fleet: 2 partitions: 1 done, 1 held, 0 free" in lines, lines
    held = f"partition 1 held by pid {doomed.pid} on {socket.gethostname()}, since 20"
    assert any(line.startswith(held) for line in lines), lines
    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    fleet = json.loads("".join(status.stdout_other))["fleet"]
    assert (fleet["done"], fleet["held"], fleet["free"]) == (1, 1, 0), fleet
    assert fleet["workers"][0]["partition"] == 1
    assert fleet["workers"][0]["pid"] == doomed.pid
    page = tmp_path / "report.html"
    code, report = await job.cli("report", "--output", str(page))
    assert code == 0, report.tail()
    html = page.read_text(encoding="utf-8")
    assert "Fleet: 2 partitions: 1 done, 1 held, 0 free" in html
    assert f"pid {doomed.pid} on {socket.gethostname()}, since 20" in html

    doomed.send(signal.SIGKILL)
    assert await doomed.wait(30) == -9
    # Its pid gone on this host: the partition is claimed without waiting for the ttl.
    assert await survivor.wait(120) == 0, survivor.tail()
    assert _claimed([survivor]) == Counter({1: 1, 2: 1})
    await _nothing_left(job, sim)


async def test_a_worker_with_no_plan_says_so(job: Job, tmp_path: Path, sim: SimProcess) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,a\n", encoding="utf-8")
    code, imported = await job.cli("users", "import", str(users), "--source", "twitter-mobile")
    assert code == 0, imported.tail()
    worker = await job.worker(sim)
    assert await worker.wait(60) == 2, worker.tail()
    assert "no partition plan yet" in worker.stderr


async def test_a_worker_keeps_the_rate_it_learned_from_one_partition_to_the_next(
    tmp_path: Path,
) -> None:
    """One limiter for all of a worker's partitions: the rate learned from the first
    partition's 429s paces the next ones from their first request (a limiter built per
    partition started each one unpaced, into 429s again). Every partition's first
    sample, written before its first request, gives the rate the worker knows then."""
    limited = start_simulator(
        SimConfig(
            users=USERS,
            mean_friends=20.0,
            latency=0.02,
            rate_limit="10",
            rate_limit_style="retry-after",
        )
    )
    db = tmp_path / "job.db"
    job = Job(f"sqlite:///{db}", clean_env(**LEASE_ENV))
    try:
        await _planned(job, tmp_path, 3)
        worker = await job.worker(limited, "--concurrency", "20")
        assert await worker.wait(240) == 0, worker.tail()
    finally:
        limited.stop()
    assert _claimed([worker]) == Counter({1: 1, 2: 1, 3: 1})
    assert worker.named("limiter.rate_learned"), worker.tail()
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT partition, learned_rate, paused_seconds FROM run_samples ORDER BY at, rowid"
        ).fetchall()
    finally:
        conn.close()
    first: dict[int, tuple[float | None, float]] = {}
    for part, rate, paused in rows:
        first.setdefault(part, (rate, paused))
    assert first[1][0] is None, rows  # nothing learned before the first request
    assert first[2][0] is not None, rows
    assert first[3][0] is not None, rows
    # Each partition's samples count its own pauses, not the worker's earlier ones.
    assert [paused for _rate, paused in first.values()] == [0.0, 0.0, 0.0], rows
