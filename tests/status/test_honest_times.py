"""status and report on a job with one partition finished, one running and one never
started (issue 23): no ETA for a partition nobody runs, rates over each partition's
active time, the same figures from both commands, the job's facts, notes that fit the
terminal. The store is built by real runs against the simulator; every command is a
new process, on both stores."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.simulator import SimConfig
from friendscrape.stores import opened_store
from friendscrape.stores.base import Lease
from reliability.harness import SimProcess, clean_env, run_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 60
PARTITIONS = 3
PARTIAL = 5
"""Users the run of partition 2 collects before it stops (its lease is then held)."""


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, the environment its processes get, its settings."""

    url: str
    env: dict[str, str]
    settings: Settings

    def args(self, *args: str) -> list[str]:
        return [*args, "--store", self.url]


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'job.db'}"
        return Job(url, clean_env(), Settings(store=url))
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=emulator.grpc_endpoint,
    )
    url = f"bigquery://test-project/{dataset}"
    return Job(url, env, Settings(store=url, bigquery_endpoint=emulator.endpoint))


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    server = start_simulator(SimConfig(users=USERS, mean_friends=20.0, latency=0.05))
    try:
        yield server
    finally:
        server.stop()


async def _cli(job: Job, *args: str, **env: str) -> list[str]:
    code, run = await run_cli(job.args(*args), env={**job.env, **env}, timeout=180)
    assert code == 0, run.tail()
    assert "Traceback" not in run.stderr, run.stderr
    return run.stdout_other


async def _built(job: Job, sim: SimProcess, tmp_path: Path) -> None:
    """Partition 1 collected to its end, 2 in part (then held by a live lease), 3 never."""
    accounts = list(SimConfig(users=USERS, mean_friends=20.0).make_graph().accounts())
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name\n" + "".join(f"{a.user_id},{a.screen_name}\n" for a in accounts),
        encoding="utf-8",
    )
    await _cli(job, "users", "import", str(users), "--source", "twitter-mobile")
    await _cli(job, "partitions", "plan", "--count", str(PARTITIONS))
    base = ["--base-url", sim.base_url, "--concurrency", "4"]
    await _cli(job, "run", "--partition", "1", *base)
    await _cli(job, "run", "--partition", "2", *base, "--users-limit", str(PARTIAL))


async def test_status_and_report_say_what_runs_and_agree(
    job: Job, sim: SimProcess, tmp_path: Path
) -> None:
    await _built(job, sim, tmp_path)
    # This test process holds partition 2 as a live run would (alive, on this host).
    held = Lease(2, "run-held-by-test", ttl=600.0)
    async with opened_store(store_config(job.settings)) as store:
        await store.acquire_lease(held)
    try:
        doc = json.loads("\n".join(await _cli(job, "status", "--json")))
        tables = {w: await _cli(job, "status", COLUMNS=str(w)) for w in (40, 80, 200)}
        page_file = tmp_path / "r.html"
        await _cli(job, "report", "--output", str(page_file))
    finally:
        async with opened_store(store_config(job.settings)) as store:
            await store.release_lease(held)
    p1, p2, p3 = doc["partitions"]

    # Who runs what: only partition 2 has a live lease.
    assert (p1["running"], p2["running"], p3["running"]) == (False, True, False)
    assert p2["lease_holder"]["run_id"] == "run-held-by-test"
    assert p2["lease_holder"]["host"] == socket.gethostname()
    assert p3["lease_holder"] is None
    assert p1["eta_seconds"] == 0  # done
    assert p3["collected"] == 0
    assert p3["eta_seconds"] is None, "nobody collects partition 3: no ETA"
    assert p2["eta_seconds"] is not None

    # Rates over each partition's active time; the total is the running ones' sum.
    for p in (p1, p2):
        assert p["active_seconds"] > 0
        assert p["users_per_day_overall"] == pytest.approx(
            p["collected"] * 86400 / p["active_seconds"], rel=0.01
        )
    total = doc["total"]
    assert total["users_per_day_overall"] == pytest.approx(p2["users_per_day_overall"], rel=0.01)
    assert total["eta_seconds"] == pytest.approx(
        total["remaining"] * 86400 / total["users_per_day_overall"], rel=0.01, abs=1
    )
    assert doc["eta_all_workers"]["workers"] == 2  # partitions 2 and 3 have users left
    assert doc["eta_all_workers"]["eta_seconds"] is not None

    # What the job counts and where from.
    assert doc["platform"] == "twitter-mobile"
    assert doc["store"] == job.url
    assert doc["workers_seen"] == 3  # two runs and the held lease
    assert doc["workers_running"] == 1
    ok = total["statuses"]["ok"]
    assert doc["edges_collected"] > 0
    assert doc["mean_friends_per_ok_user"] == pytest.approx(doc["edges_collected"] / ok, abs=0.01)
    assert doc["first_result"] is not None
    assert doc["last_result"] is not None
    assert doc["simulated"] is True

    # The table: partition 3 is not running; notes fit 40, 80 and 200 columns unbroken.
    for width, lines in tables.items():
        rows = {ln.split()[0]: ln for ln in lines if ln.split()[:1] in (["1"], ["2"], ["3"])}
        assert rows["3"].endswith("not running"), lines
        heading = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["part"])
        notes = lines[heading + PARTITIONS + 2 :]
        # Lines are broken only between words (a word longer than the line, the store's
        # path at 40 columns, stands alone).
        too_long = [ln for ln in notes + lines[:heading] if len(ln) > width and " " in ln]
        assert not too_long, (width, too_long)
        text = " ".join(notes)
        assert "users/day: users finished per day over the partition's active time" in text
        assert "rates measured against a local simulator" in text
    assert "/day 1h" not in "\n".join(tables[80])

    # The report: the same figures, the facts, a banner, the histogram's words.
    page = page_file.read_text(encoding="utf-8")
    headline = re.search(r'id="headline">([^<]*)<', page)
    assert headline is not None
    said = headline.group(1)
    assert f"{total['collected']:,} of {total['users']:,} users collected" in said
    assert "from twitter-mobile" in said
    assert f"{doc['edges_collected']:,} edges" in said
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page.split('id="partitions"')[1].split("</table>")[0])
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]
    by_part = {c[0]: c for c in cells[1:]}
    # Partition 1 is finished: its rate reads the same whenever it is read. Partition 2
    # runs: its active time goes on to the moment each command reads it, a little later
    # for the report, so its rate there is at most the status's.
    # (Read as a number: the two commands may round a figure on a half either way.)
    finished = float(by_part["1"][7].replace(",", ""))
    assert finished == pytest.approx(p1["users_per_day_overall"], abs=1)
    later = float(by_part["2"][7].replace(",", ""))
    assert 0 < later <= p2["users_per_day_overall"] + 1
    assert by_part["total"][7] == by_part["2"][7], "the total is the running partitions' sum"
    assert by_part["3"][8] == "not running"
    assert 'id="simulated"' in page
    assert "local simulator" in page.split('id="simulated"')[1].split("</p>")[0]
    assert f"<dd>{job.url}</dd>" in page
    assert "<dt>workers seen</dt><dd>3 runs</dd>" in page
    assert re.search(r"ok users per bin of [\d,]+ friends \(0-", page)
    assert not re.search(r"ok users per [\d,]+ friends", page)
