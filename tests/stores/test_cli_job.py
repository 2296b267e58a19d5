"""The whole job as users run it, on each store: every command a new process (import,
plan, show, run two partitions against the real simulator, status, report, export, a
refused re-plan, retry-failed), so nothing one process kept in memory can hide a store
that the next process cannot read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.simulator import SimConfig, SyntheticGraph
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 40
MEAN_FRIENDS = 25.0


def _config(**faults: float) -> SimConfig:
    return SimConfig(users=USERS, mean_friends=MEAN_FRIENDS, latency=0.0, **faults)


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]

    async def cli(self, *args: str, timeout: float = 120.0) -> tuple[int, CliRun]:
        return await run_cli([*args, "--store", self.url], env=self.env, timeout=timeout)


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        return Job(f"sqlite:///{tmp_path / 'job.db'}", clean_env())
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=emulator.grpc_endpoint,
    )
    return Job(f"bigquery://test-project/{dataset}", env)


@pytest.fixture(scope="module")
def faulty_sim() -> Iterator[SimProcess]:
    """Half the pages fail with a 500: with one fetch attempt, many users end failed."""
    sim = start_simulator(_config(error_rate=0.5))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def clean_sim() -> Iterator[SimProcess]:
    """The same graph, served without faults."""
    sim = start_simulator(_config())
    try:
        yield sim
    finally:
        sim.stop()


def _status(run: CliRun) -> dict[str, object]:
    document = json.loads("\n".join(run.stdout_other))
    assert isinstance(document, dict)
    return document


def _export(path: Path) -> dict[str, dict[str, object]]:
    rows: dict[str, dict[str, object]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert row["user_id"] not in rows, f"two rows for {row['user_id']}"
        rows[row["user_id"]] = row
    return rows


async def test_the_whole_job_one_process_per_command(
    job: Job, tmp_path: Path, faulty_sim: SimProcess, clean_sim: SimProcess
) -> None:
    graph: SyntheticGraph = _config().make_graph()
    accounts = list(graph.accounts())
    lines = ["user_id,screen_name,following_count"]
    lines += [f"{a.user_id},{a.screen_name},{a.following_count}" for a in accounts]
    lines.insert(3, ",no_id,1")  # line 4: a bad line, reported and skipped
    users_csv = tmp_path / "users.csv"
    users_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, imported = await job.cli("users", "import", str(users_csv))
    assert code == 1, imported.tail()  # bad rows make the exit non-zero; good ones are saved
    assert "line 4: empty user_id" in imported.stderr
    summary = f"read {USERS + 1} rows: {USERS} users added, 0 updated, 0 duplicates collapsed"
    assert imported.stdout_other == [f"{summary}, 1 bad rows rejected"]

    code, planned = await job.cli("partitions", "plan", "--count", "2")
    assert code == 0, planned.tail()
    code, shown = await job.cli("partitions", "show")
    assert code == 0, shown.tail()
    total = [line.split() for line in shown.stdout_other if line.strip().startswith("total")]
    assert total == [["total", str(USERS)]], shown.stdout_other

    flaky = {"FRIENDSCRAPE_FETCH_ATTEMPTS": "1", "FRIENDSCRAPE_BREAKER_USERS": "1000"}
    for partition in ("1", "2"):
        code, ran = await run_cli(
            [
                "run",
                "--store",
                job.url,
                "--partition",
                partition,
                "--source",
                "twitter-mobile",
                "--base-url",
                faulty_sim.base_url,
            ],
            env={**job.env, **flaky},
            timeout=120,
        )
        assert code == 0, ran.tail()
        if job.url.startswith("bigquery://"):
            # Results went through the Storage Write API, the default write path.
            assert ran.named("store.append"), ran.tail()
            assert not ran.named("store.write_api_fallback"), ran.tail()

    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    figures = _status(status)["total"]
    assert isinstance(figures, dict)
    assert figures["users"] == USERS
    assert figures["collected"] == USERS
    failed = figures["statuses"]["failed"]
    assert 0 < failed < USERS, figures

    report = tmp_path / "report.html"
    code, reported = await job.cli("report", "--output", str(report))
    assert code == 0, reported.tail()
    assert f"{USERS:,} users collected" in report.read_text(encoding="utf-8")

    code, replanned = await job.cli("partitions", "plan", "--count", "3")
    assert code != 0, replanned.tail()
    errors = [ln for ln in replanned.stderr.splitlines() if ln.startswith("friendscrape: error:")]
    assert len(errors) == 1, replanned.stderr
    assert "already have results" in errors[0]
    assert "Traceback" not in replanned.stderr
    code, shown_again = await job.cli("partitions", "show")
    assert code == 0, shown_again.tail()
    assert shown_again.stdout_other == shown.stdout_other, "a refused re-plan changes nothing"

    for partition in ("1", "2"):
        code, retried = await job.cli(
            "run",
            "--partition",
            partition,
            "--source",
            "twitter-mobile",
            "--base-url",
            clean_sim.base_url,
            "--retry-failed",
        )
        assert code == 0, retried.tail()

    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    figures = _status(status)["total"]
    assert isinstance(figures, dict)
    truly_failed = sum(graph.expected(a.screen_name)["status"] == "failed" for a in accounts)
    assert figures["statuses"]["failed"] == truly_failed < failed, figures
    assert figures["remaining"] == 0

    exported = tmp_path / "friends.jsonl"
    code, done = await job.cli("export", "--format", "jsonl", "--output", str(exported))
    assert code == 0, done.tail()
    rows = _export(exported)
    assert set(rows) == {a.user_id for a in accounts}
    wrong = []
    for account in accounts:
        row, truth = rows[account.user_id], graph.expected(account.screen_name)
        if row["status"] != truth["status"] or (
            row["status"] == "ok" and row["friend_names"] != truth["friends"]
        ):
            wrong.append((account.screen_name, row["status"], truth["status"]))
    assert not wrong, f"{len(wrong)} users differ from the simulator's truth: {wrong[:5]}"
