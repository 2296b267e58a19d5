"""A re-plan while a run holds a partition's lease is refused, --force included (issue 22):
it would move users under the running worker, which would then fetch users of other
partitions and save them as its own. An import during the run is allowed: it adds users
outside the plan and moves none. Every command a new process, on both stores."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.simulator import SimConfig
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 60


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]

    def args(self, *args: str) -> list[str]:
        return [*args, "--store", self.url]

    async def cli(self, *args: str) -> tuple[int, CliRun]:
        return await run_cli(self.args(*args), env=self.env, timeout=120)


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        return Job(f"sqlite:///{tmp_path / 'job.db'}", clean_env())
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    # Results by insert_all, as in the claim tests: with a run writing through the local
    # server's Storage Write API, an import's load job in another process at once once
    # failed inside that server ("Attempting to execute an unsuccessful or closed pending
    # query result", a 400 BigQuery itself does not give).
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_WRITE_API="insert_all",
    )
    return Job(f"bigquery://test-project/{dataset}", env)


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimProcess]:
    """Pages slow enough that a run of one user at a time outlasts the test's commands."""
    sim = start_simulator(SimConfig(users=USERS, mean_friends=20.0, latency=0.5))
    try:
        yield sim
    finally:
        sim.stop()


def _one_error_line(run: CliRun) -> str:
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("friendscrape:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


async def test_a_replan_under_a_live_run_is_refused_even_forced(
    job: Job, tmp_path: Path, slow_sim: SimProcess
) -> None:
    accounts = list(SimConfig(users=USERS, mean_friends=20.0).make_graph().accounts())
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name\n" + "".join(f"{a.user_id},{a.screen_name}\n" for a in accounts),
        encoding="utf-8",
    )
    code, imported = await job.cli("users", "import", str(users))
    assert code == 0, imported.tail()
    code, planned = await job.cli("partitions", "plan", "--count", "2")
    assert code == 0, planned.tail()
    code, shown = await job.cli("partitions", "show")
    plan_before = shown.stdout_other

    run = await start_cli(
        job.args(
            "run",
            "--partition",
            "1",
            "--source",
            "twitter-mobile",
            "--base-url",
            slow_sim.base_url,
            "--concurrency",
            "1",
        ),
        env=job.env,
    )
    try:
        await run.wait_event("lease.taken", timeout=60)
        for extra in ([], ["--force"]):
            code, refused = await job.cli("partitions", "plan", "--count", "3", *extra)
            assert code == 2, refused.tail()
            line = _one_error_line(refused)
            assert line.startswith(
                f"friendscrape: error: partition 1 is held by a live run (pid {run.pid} on "
                f"{socket.gethostname()}, since 20"
            ), line
            assert "(--force does not override this)" in line, line
        code, shown = await job.cli("partitions", "show")
        assert code == 0, shown.tail()
        assert shown.stdout_other == plan_before

        # An import meanwhile is safe: a new user stays outside the plan until placed,
        # and no planned user moves.
        more = tmp_path / "more.csv"
        more.write_text("user_id,screen_name\n99999999,late_user\n", encoding="utf-8")
        code, imported = await job.cli("users", "import", str(more))
        assert code == 0, imported.tail()
        code, shown = await job.cli("partitions", "show")
        assert code == 0, shown.tail()
        assert shown.stdout_other[: len(plan_before)] == plan_before
        assert run.process.returncode is None, run.tail()
    finally:
        if run.process.returncode is None:
            run.send(signal.SIGTERM)
        await run.wait(60)
    assert run.named("lease.released"), run.tail()

    # The run is over: the forced re-plan goes ahead.
    code, replanned = await job.cli("partitions", "plan", "--count", "3", "--force")
    assert code == 0, replanned.tail()
