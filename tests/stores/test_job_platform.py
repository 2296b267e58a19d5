"""A job knows its platform, on each store, every command a new process: `users import
--source` records it, `run` collects from it without being told and refuses another,
a job with none and no source is refused with the choices, a store written before
platforms were recorded reads its results' one source (and is given one once), and
importing users of another platform into the job is refused."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from friendscrape.platforms import SOURCE_NAMES
from friendscrape.simulator import SimConfig
from friendscrape.simulator.formats import import_user
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 12
CONFIG = SimConfig(users=USERS, mean_friends=8.0, latency=0.0)


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, the environment its processes get, and how to take
    its job record away (as a store of an older version lacks it)."""

    url: str
    env: dict[str, str]
    emulator_endpoint: str = ""
    dataset: str = ""
    sqlite_path: Path | None = field(default=None)

    async def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120.0
    ) -> tuple[int, CliRun]:
        return await run_cli(
            [*args, "--store", self.url], env={**self.env, **(env or {})}, timeout=timeout
        )

    def forget_platform(self) -> None:
        """Drop the job table: the store reads as one written before it existed."""
        if self.sqlite_path is not None:
            with closing(sqlite3.connect(self.sqlite_path)) as conn:
                conn.execute("DROP TABLE job")
                conn.commit()
            return
        from google.api_core.client_options import ClientOptions  # noqa: PLC0415
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
        from google.cloud import bigquery  # noqa: PLC0415

        client = bigquery.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.emulator_endpoint),
        )
        with closing(client):
            client.delete_table(f"test-project.{self.dataset}.job", retry=None, timeout=20)


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        path = tmp_path / "job.db"
        return Job(f"sqlite:///{path}", clean_env(), sqlite_path=path)
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=emulator.grpc_endpoint,
    )
    return Job(
        f"bigquery://test-project/{dataset}",
        env,
        emulator_endpoint=emulator.endpoint,
        dataset=dataset,
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = start_simulator(CONFIG)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def bluesky_users(tmp_path: Path) -> Path:
    """The simulator's accounts as a Bluesky job's users file names them."""
    graph = CONFIG.make_graph()
    lines = ["user_id,screen_name"]
    for account in graph.accounts():
        user = import_user("bluesky", graph, account)
        lines.append(f"{user.user_id},{user.screen_name}")
    path = tmp_path / "users.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(run: CliRun) -> str:
    """The one error line of a refused command (and that it is the only one)."""
    assert "Traceback" not in run.stderr, run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("friendscrape: error:")]
    assert len(errors) == 1, run.stderr
    return errors[0]


async def _platform(job: Job) -> object:
    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    return json.loads("\n".join(status.stdout_other))["platform"]


async def _collect(job: Job, sim: SimProcess, *source: str) -> CliRun:
    code, ran = await job.cli("run", "--partition", "1", "--base-url", sim.base_url, *source)
    assert code == 0, ran.tail()
    return ran


async def test_import_records_the_platform_and_run_collects_from_it(
    job: Job, sim: SimProcess, bluesky_users: Path, tmp_path: Path
) -> None:
    code, imported = await job.cli("users", "import", str(bluesky_users), "--source", "bluesky")
    assert code == 0, imported.tail()
    code, planned = await job.cli("partitions", "plan", "--count", "1")
    assert code == 0, planned.tail()
    assert await _platform(job) == "bluesky"  # before any result: the job's record

    await _collect(job, sim)  # no --source: the job's platform
    code, status = await job.cli("status", "--json")
    totals = json.loads("\n".join(status.stdout_other))["total"]
    assert totals["remaining"] == 0
    assert totals["statuses"]["ok"] > 0, totals
    # The export's summary names the job's platform; the rows are the run's own.
    exported = tmp_path / "friends.jsonl"
    code, done = await job.cli("export", "--format", "jsonl", "--output", str(exported))
    assert code == 0, done.tail()
    assert f"exported {USERS} users of the bluesky job to {exported}" in done.stderr
    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert {row["source"] for row in rows} == {"bluesky"}

    code, refused = await job.cli(
        "run", "--partition", "1", "--source", "x-api", "--base-url", sim.base_url
    )
    assert code == 2
    assert _error(refused) == (
        "friendscrape: error: this job's platform is bluesky (recorded in its store), not "
        "x-api from --source or FRIENDSCRAPE_SOURCE: leave it out, or use another --store "
        "for a job on x-api"
    )
    code, refused = await job.cli(
        "run", "--partition", "1", env={"FRIENDSCRAPE_SOURCE": "mastodon"}
    )
    assert code == 2
    assert "bluesky" in _error(refused)
    assert "not mastodon" in _error(refused)

    code, again = await job.cli("users", "import", str(bluesky_users), "--source", "bluesky")
    assert code == 0, again.tail()
    code, other = await job.cli("users", "import", str(bluesky_users), "--source", "x-api")
    assert code == 2
    assert _error(other) == (
        "friendscrape: error: this job's platform is bluesky (recorded in its store), not "
        "x-api: import users of x-api into another --store"
    )
    assert other.stdout_other == []  # nothing read, nothing imported
    assert await _platform(job) == "bluesky"


async def test_a_job_with_no_platform_and_no_source_is_refused_with_the_choices(
    job: Job, sim: SimProcess, bluesky_users: Path
) -> None:
    code, imported = await job.cli("users", "import", str(bluesky_users))  # no --source
    assert code == 0, imported.tail()
    code, planned = await job.cli("partitions", "plan", "--count", "1")
    assert code == 0, planned.tail()

    code, refused = await job.cli("run", "--partition", "1", "--base-url", sim.base_url)
    assert code == 2
    line = _error(refused)
    assert line == (
        "friendscrape: error: this job has no platform yet: pass --source (or set "
        "FRIENDSCRAPE_SOURCE) with one of twitter-mobile, x-api, bluesky, mastodon"
    )
    assert all(name in line for name in SOURCE_NAMES)
    assert not refused.named("lease.taken"), "refused before taking the partition"
    assert await _platform(job) is None

    # The first run given a source gives the job its platform, once.
    await _collect(job, sim, "--source", "bluesky")
    assert await _platform(job) == "bluesky"
    await _collect(job, sim)
    code, other = await job.cli("users", "import", str(bluesky_users), "--source", "mastodon")
    assert code == 2
    assert "not mastodon" in _error(other)


async def test_a_store_without_the_record_reads_its_results_and_is_given_it_again(
    job: Job, sim: SimProcess, bluesky_users: Path
) -> None:
    code, imported = await job.cli("users", "import", str(bluesky_users), "--source", "bluesky")
    assert code == 0, imported.tail()
    code, planned = await job.cli("partitions", "plan", "--count", "1")
    assert code == 0, planned.tail()
    await _collect(job, sim)
    job.forget_platform()  # as a store of an older version: results, no record

    assert await _platform(job) == "bluesky"  # its results' one source
    code, refused = await job.cli(
        "run", "--partition", "1", "--source", "x-api", "--base-url", sim.base_url
    )
    assert code == 2
    assert _error(refused) == (
        "friendscrape: error: this job's results come from bluesky, not x-api from --source "
        "or FRIENDSCRAPE_SOURCE: leave it out, or use another --store for a job on x-api"
    )
    code, other = await job.cli("users", "import", str(bluesky_users), "--source", "x-api")
    assert code == 2
    assert "this job's results come from bluesky, not x-api" in _error(other)

    await _collect(job, sim, "--retry-failed")  # no --source: read from its results
    job.forget_platform()  # recorded again by that run (the table was made anew)
    await _collect(job, sim, "--source", "bluesky")
    assert await _platform(job) == "bluesky"
