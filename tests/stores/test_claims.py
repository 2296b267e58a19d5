"""`run --partition next` (issue 24): workers claim partitions on demand, one holder per
partition, a SIGKILLed holder's partition taken over, a worker claiming its next
partition while the last users of the one before are being fed (two held, both taken
over when it is SIGKILLed), and every worker ending once nothing is left. Every worker a
separate process, on both stores."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from friendscrape.core.pace import LEAVE_MARGIN
from friendscrape.simulator import SimConfig
from reliability.harness import (
    CliRun,
    SimProcess,
    clean_env,
    run_cli,
    start_cli,
    start_simulator,
    write_lock,
)

pytestmark = pytest.mark.slow

USERS = 60

# A short lease, so a waiting worker looks again within a second.
LEASE_ENV = {"FRIENDSCRAPE_LEASE_TTL": "4", "FRIENDSCRAPE_LEASE_HEARTBEAT": "0.5"}


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]
    # Result rows per user_id, read from the store itself (not through friendscrape).
    rows_per_user: Callable[[], Counter[str]] = field(default=Counter)
    # The SQLite file (None: BigQuery, whose locks are the server's own).
    db: Path | None = None

    def args(self, *args: str) -> list[str]:
        return [*args, "--store", self.url]

    async def cli(self, *args: str) -> tuple[int, CliRun]:
        return await run_cli(self.args(*args), env=self.env, timeout=120)

    def hold_still(self, worker: CliRun) -> None:
        """SIGSTOP ``worker`` outside any write of its own. Stopped inside one, it would
        hold the SQLite file's write lock while it is stopped, and every other worker would
        wait on it (and the test would see that, not what it is about): so the write lock
        is taken here first, between the worker's writes, and let go once it is stopped."""
        if self.db is None:
            worker.send(signal.SIGSTOP)
            return
        with write_lock(self.db):  # waits for the worker's write, if any, to end
            worker.send(signal.SIGSTOP)

    async def worker(
        self, sim: SimProcess, *extra: str, env: dict[str, str] | None = None
    ) -> CliRun:
        args = ["run", "--partition", "next", "--source", "twitter-mobile"]
        args += ["--base-url", sim.base_url, *extra]
        return await start_cli(self.args(*args), env={**self.env, **(env or {})})


def _sqlite_rows(db: Path) -> Counter[str]:
    conn = sqlite3.connect(db)
    try:
        return Counter(uid for (uid,) in conn.execute("SELECT user_id FROM user_friends"))
    finally:
        conn.close()


def _bigquery_rows(endpoint: str, table: str) -> Counter[str]:
    from google.api_core.client_options import ClientOptions  # noqa: PLC0415
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import bigquery  # noqa: PLC0415

    client = bigquery.Client(
        project="test-project",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    try:
        job = client.query(f"SELECT user_id FROM `{table}`", retry=None, job_retry=None)
        return Counter(row["user_id"] for row in job.result(timeout=60))
    finally:
        client.close()


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        db = tmp_path / "job.db"
        return Job(f"sqlite:///{db}", clean_env(**LEASE_ENV), lambda: _sqlite_rows(db), db)
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
    table = f"test-project.{dataset}.user_friends"
    return Job(
        f"bigquery://test-project/{dataset}", env, lambda: _bigquery_rows(emulator.endpoint, table)
    )


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


async def _planned(job: Job, tmp_path: Path, count: int, config: SimConfig | None = None) -> None:
    graph = (config or SimConfig(users=USERS, mean_friends=20.0)).make_graph()
    accounts = list(graph.accounts())
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


async def test_workers_starting_together_take_different_partitions_at_once(
    job: Job, tmp_path: Path, sim: SimProcess
) -> None:
    """Four workers read the same free partitions at the start; each take takes the
    first of them still free when it runs (on BigQuery one MERGE), so none loses a take
    while plenty are free: reading 1-12 free, each named partition 1, and three of the
    four lost that race (a read and a take more each, seconds on a busy BigQuery)."""
    await _planned(job, tmp_path, 12)
    workers = await asyncio.gather(*(job.worker(sim) for _ in range(4)))
    codes = await asyncio.gather(*(w.wait(240) for w in workers))
    assert codes == [0] * 4, [w.tail() for w in workers]
    assert _claimed(workers) == Counter(range(1, 13)), _claimed(workers)
    lost = [e["partitions"] for w in workers for e in w.named("claim.taken_by_another")]
    # A take loses only once the others took every partition its read found free:
    # each of the three others takes one at a time, two held at most.
    assert all(free <= 6 for free in lost), lost


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
    assert "fleet: 2 partitions: 1 done, 1 held, 0 free; balanced by users" in lines, lines
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
    sample, written before its first request, gives the rate the worker knows then: a
    partition started after the first one ended has it."""
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
    # Partition 2 is claimed ahead, once partition 1's users are all in flight: maybe
    # before its first 429. Partition 3 starts once partition 1 has ended.
    assert first[3][0] is not None, rows
    # Each partition's samples count its own pauses, not the worker's earlier ones.
    assert [paused for _rate, paused in first.values()] == [0.0, 0.0, 0.0], rows


# Claim-ahead: 12 users of about 3 pages each, 4 a partition, 2 at a time. Pages of 2s
# keep a partition's last users in flight for some seconds after its next one is
# claimed (the claim is three statements, about a second each on the local BigQuery
# server of a busy machine).
AHEAD = SimConfig(users=12, mean_friends=60.0, latency=2.0)


async def test_a_worker_claims_ahead_and_a_sigkill_while_it_holds_two_leaves_both(
    job: Job, tmp_path: Path
) -> None:
    """Once a partition's last users are in flight, its worker claims the next one and
    feeds it at once: it holds two partitions, both leases live, and status, --json and
    the report say so. SIGKILLed then, it leaves both to the next worker: every list
    exact, every user one row."""
    slow = start_simulator(AHEAD)
    fast = start_simulator(SimConfig(users=12, mean_friends=60.0, latency=0.02))
    try:
        await _planned(job, tmp_path, 3, AHEAD)
        # A ttl long enough that the stopped worker's leases outlive the reads below.
        slow_env = {"FRIENDSCRAPE_LEASE_TTL": "120", "FRIENDSCRAPE_REQUEST_TIMEOUT": "10"}
        doomed = await job.worker(slow, "--concurrency", "2", env=slow_env)
        ahead = await doomed.wait_event("claim.ahead", timeout=180)
        doomed.send(signal.SIGSTOP)  # frozen while it holds both: read at leisure
        assert (ahead["partition"], ahead["draining"]) == (2, [1]), ahead
        assert [e["partition"] for e in doomed.named("claim.taken")] == [1, 2]
        # Claimed before partition 1's last users were fed: once no more were left to
        # feed than its fetchers (2), with no user finished to time a claim's lead by.
        nearly = doomed.named("run.nearly_fed")[0]
        assert (nearly["partition"], nearly["to_feed"], nearly["lead_users"]) == (1, 2, 2), nearly

        code, status = await job.cli("status")
        assert code == 0, status.tail()
        lines = [line.strip() for line in status.stdout_other]
        assert (
            "fleet: 3 partitions: 0 done, 2 held by 1 worker, 1 free; balanced by users" in lines
        ), lines
        text = " ".join(" ".join(lines).split())  # long lines are wrapped to the width
        host = re.escape(socket.gethostname())
        for part, other in ((1, 2), (2, 1)):
            held = rf"partition {part} held by pid {doomed.pid} on {host}, since 20\S+ \S+"
            also = rf"; this worker also holds {other} \(claimed ahead\)"
            assert re.search(held + also, text), lines
        code, status = await job.cli("status", "--json")
        assert code == 0, status.tail()
        fleet = json.loads("".join(status.stdout_other))["fleet"]
        assert (fleet["done"], fleet["held"], fleet["holders"], fleet["free"]) == (0, 2, 1, 1)
        assert [(w["partition"], w["pid"]) for w in fleet["workers"]] == [
            (1, doomed.pid),
            (2, doomed.pid),
        ], fleet
        page = tmp_path / "report.html"
        code, report = await job.cli("report", "--output", str(page))
        assert code == 0, report.tail()
        assert "Fleet: 3 partitions: 0 done, 2 held by 1 worker, 1 free" in page.read_text()

        doomed.send(signal.SIGKILL)
        assert await doomed.wait(30) == -9
        # Its pid gone on this host: both partitions are claimed without the ttl's wait.
        survivor = await job.worker(fast)
        assert await survivor.wait(180) == 0, survivor.tail()
    finally:
        slow.stop()
        fast.stop()
    claimed = _claimed([survivor])
    assert claimed[1] == claimed[2] == claimed[3] == 1, claimed  # both taken over, once
    assert "Traceback" not in survivor.stderr, survivor.stderr

    exported = tmp_path / "friends.jsonl"
    code, done = await job.cli("export", "--format", "jsonl", "--output", str(exported))
    assert code == 0, done.tail()
    graph = AHEAD.make_graph()
    rows = {}
    for line in exported.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows[row["user_id"]] = row
    wrong = []
    for account in graph.accounts():
        row, truth = rows.get(account.user_id), graph.expected(account.screen_name)
        if row is None or row["status"] != truth["status"]:
            wrong.append((account.screen_name, row and row["status"], row and row.get("error")))
        elif row["status"] == "ok" and row["friend_names"] != truth["friends"]:
            wrong.append((account.screen_name, "list"))
    assert not wrong, wrong
    per_user = job.rows_per_user()
    assert set(per_user) == {a.user_id for a in graph.accounts()}
    assert set(per_user.values()) == {1}, per_user  # none saved twice


async def test_a_far_slower_worker_leaves_the_last_partitions_to_a_faster_one(
    job: Job, tmp_path: Path
) -> None:
    """A slow worker takes the first partition and is held still (SIGSTOP) while a
    fast worker ends fourteen of the other nineteen. Let go, it has taken far longer over
    its partition than the fast one takes over each: once its users are all in flight,
    the fast one would end every free partition before it could end one more, so it
    leaves them to it (claim.left_to_others) instead of claiming ahead, and exits 0
    once none is left."""
    slow = start_simulator(SimConfig(users=80, mean_friends=20.0, latency=1.0))
    fast = start_simulator(SimConfig(users=80, mean_friends=20.0, latency=0.3))
    # Its lease must outlast the pause; pages of 1s need more than the suite's 1s timeout.
    slow_env = {"FRIENDSCRAPE_LEASE_TTL": "120", "FRIENDSCRAPE_REQUEST_TIMEOUT": "10"}
    try:
        await _planned(job, tmp_path, 20, SimConfig(users=80, mean_friends=20.0))
        laggard = await job.worker(slow, "--concurrency", "2", env=slow_env)
        assert (await laggard.wait_event("run.started", timeout=120))["partition"] == 1
        job.hold_still(laggard)
        quick = await job.worker(fast, "--concurrency", "2")
        for done in range(14):
            await quick.wait_event(
                "partition.complete", timeout=180, where=lambda e, n=done: e["partition"] == n + 2
            )
        laggard.send(signal.SIGCONT)
        codes = [await laggard.wait(300), await quick.wait(300)]
    finally:
        slow.stop()
        fast.stop()
    assert codes == [0, 0], [laggard.tail(), quick.tail()]
    left = laggard.named("claim.left_to_others")
    assert left, laggard.tail()
    assert left[0]["workers"] == 1, left
    assert left[0]["own_seconds"] > LEAVE_MARGIN * left[0]["others_finish_seconds"], left
    assert _claimed([laggard]) == Counter({1: 1}), _claimed([laggard])
    assert _claimed([quick]) == Counter(range(2, 21)), _claimed([quick])
    assert laggard.named("claim.none_left"), laggard.tail()
    per_user = job.rows_per_user()
    assert len(per_user) == 80, per_user
    assert set(per_user.values()) == {1}, per_user


async def test_an_unset_heartbeat_is_a_third_of_the_lease_ttl(
    job: Job, sim: SimProcess, tmp_path: Path
) -> None:
    """With only the lease ttl set, a worker renews its leases (and writes its samples)
    every third of it; a heartbeat set stays as set."""
    await _planned(job, tmp_path, 3)
    args = ["--source", "twitter-mobile", "--base-url", sim.base_url]
    code, numbered = await job.cli("run", "--partition", "1", *args)  # the fixture's, set
    assert code == 0, numbered.tail()
    beat = float(job.env["FRIENDSCRAPE_LEASE_HEARTBEAT"])
    assert [e["heartbeat"] for e in numbered.named("lease.taken")] == [beat], numbered.tail()
    ttl = float(job.env["FRIENDSCRAPE_LEASE_TTL"])
    unset = {k: v for k, v in job.env.items() if k != "FRIENDSCRAPE_LEASE_HEARTBEAT"}
    worker = await start_cli(job.args("run", "--partition", "next", *args), env=unset)
    assert await worker.wait(180) == 0, worker.tail()
    taken = worker.named("lease.taken")
    assert len(taken) == 2, worker.tail()
    assert {(e["ttl"], e["heartbeat"]) for e in taken} == {(ttl, ttl / 3)}, taken


async def test_a_slow_worker_gives_back_its_claim_ahead_and_a_fast_one_collects_it(
    job: Job, tmp_path: Path
) -> None:
    """The leave rule is made again just before a partition claimed ahead starts. A slow
    worker alone claims partition 1, then partition 2 ahead (no other worker holds one:
    it claims), and is held still (SIGSTOP) before partition 1 is fed, while a fast
    worker ends three of the eight other partitions (five left to it: still at work when
    the slow one looks again, even with the local BigQuery server's slower claims). Let
    go, its verdict on partition 2, made again every second or so until partition 1 is
    fed (claim.recheck), now leaves it to the fast one: partition 2 is given back
    untouched (claim.given_back, its run feeds no user) and its lease released, so the
    fast worker takes it at once, though the slow worker's lease would not lapse for
    120 s."""
    config = SimConfig(users=80, mean_friends=20.0)
    slow = start_simulator(SimConfig(users=80, mean_friends=20.0, latency=2.0))
    fast = start_simulator(SimConfig(users=80, mean_friends=20.0, latency=0.3))
    # Its lease outlasts the pause; it looks again every second or so once it leaves.
    slow_env = {
        "FRIENDSCRAPE_LEASE_TTL": "120",
        "FRIENDSCRAPE_LEASE_HEARTBEAT": "1",
        "FRIENDSCRAPE_REQUEST_TIMEOUT": "10",
    }
    try:
        await _planned(job, tmp_path, 10, config)
        laggard = await job.worker(slow, "--concurrency", "2", env=slow_env)
        ahead = await laggard.wait_event("claim.ahead", timeout=120)
        job.hold_still(laggard)
        assert ahead["partition"] == 2, laggard.tail()
        assert not [e for e in laggard.named("run.fed") if e["partition"] == 1], laggard.tail()
        quick = await job.worker(fast, "--concurrency", "2")
        for done in range(3):
            await quick.wait_event(
                "partition.complete", timeout=180, where=lambda e, n=done: e["partition"] == n + 3
            )
        laggard.send(signal.SIGCONT)
        back = await laggard.wait_event("claim.given_back", timeout=120)
        # Taken at once: long before the slow worker's lease (120 s) could lapse.
        await quick.wait_event("claim.taken", timeout=60, where=lambda e: e["partition"] == 2)
        codes = [await laggard.wait(300), await quick.wait(300)]
    finally:
        slow.stop()
        fast.stop()
    assert codes == [0, 0], [laggard.tail(), quick.tail()]
    assert back["partition"] == 2, back
    assert back["own_seconds"] > LEAVE_MARGIN * back["others_finish_seconds"], back
    assert back["workers"] == 1, back
    # Made again (every second or so while partition 1 was fed, alone: it kept it; let
    # go, the fast worker at work: it left it), before partition 2 fed any user.
    rechecks = laggard.named("claim.recheck")
    assert {e["claimed"] for e in rechecks} == {2}, rechecks
    assert [e["leave"] for e in rechecks][-1:] == [True], rechecks
    assert not any(e["leave"] for e in rechecks[:-1]), rechecks
    assert not [e for e in rechecks if e["workers"] == 0 and e["leave"]], rechecks
    events = [e["event"] for e in laggard.events]
    assert events.index("claim.given_back") < events.index("run.given_back")
    assert not [e for e in laggard.named("run.fed") if e["partition"] == 2]
    finished_2 = [e for e in laggard.named("run.finished") if e["partition"] == 2]
    assert [e["users"] for e in finished_2] == [0], finished_2
    assert not [e for e in laggard.named("partition.complete") if e["partition"] == 2]
    assert Counter(e["partition"] for e in quick.named("partition.complete"))[2] == 1
    per_user = job.rows_per_user()
    assert len(per_user) == 80, per_user
    assert set(per_user.values()) == {1}, per_user
