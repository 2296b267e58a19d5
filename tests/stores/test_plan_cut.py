"""A plan records how it was cut (issue 24): `partitions plan` writes the balance and,
by pages, the max_friends and page size it weighed with into the job's facts; `partitions
show` says so; a worker run with another max_friends than a plan by pages's logs one
``plan.max_friends_differs`` at start and carries on. Both stores, every command a
separate process."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from friendscrape.models import PlanCut, User
from friendscrape.simulator import SimConfig
from friendscrape.stores.base import Store
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_simulator
from stores.test_claims import _bigquery_rows, _sqlite_rows

pytestmark = pytest.mark.slow

USERS = 24
CONFIG = SimConfig(users=USERS, mean_friends=10.0, latency=0.0)
CAP = 300
BY_PAGES = "balanced by pages (lists capped at 300 names, 20 a page)"


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, the environment its processes get, and its result
    rows per user read from the store itself."""

    url: str
    env: dict[str, str]
    rows_per_user: Callable[[], Counter[str]] = field(default=Counter)

    async def cli(self, *args: str, cap: int | None = None) -> tuple[int, CliRun]:
        env = {**self.env, **({"FRIENDSCRAPE_MAX_FRIENDS": str(cap)} if cap else {})}
        return await run_cli([*args, "--store", self.url], env=env, timeout=120)


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        db = tmp_path / "job.db"
        return Job(f"sqlite:///{db}", clean_env(), lambda: _sqlite_rows(db))
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_WRITE_API="insert_all",
    )
    table = f"test-project.{dataset}.user_friends"
    return Job(
        f"bigquery://test-project/{dataset}", env, lambda: _bigquery_rows(emulator.endpoint, table)
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = start_simulator(CONFIG)
    try:
        yield process
    finally:
        process.stop()


def _cut_lines(run: CliRun) -> list[str]:
    return [line for line in run.stdout_other if line.startswith("balanced by")]


async def _worker(job: Job, sim: SimProcess, partition: str, *extra: str) -> CliRun:
    args = ["run", "--partition", partition, "--source", "twitter-mobile", *extra]
    code, ran = await job.cli(*args, "--base-url", sim.base_url)
    assert code == 0, ran.tail()
    return ran


async def test_a_worker_told_another_max_friends_than_the_plan_warns_once(
    job: Job, sim: SimProcess, tmp_path: Path
) -> None:
    users = tmp_path / "users.csv"
    counts = [5000 if i % 4 == 0 else 40 for i in range(USERS)]
    accounts = list(CONFIG.make_graph().accounts())
    rows = "".join(
        f"{a.user_id},{a.screen_name},{c}\n" for a, c in zip(accounts, counts, strict=True)
    )
    users.write_text("user_id,screen_name,following_count\n" + rows, encoding="utf-8")
    code, done = await job.cli("users", "import", str(users), "--source", "twitter-mobile")
    assert code == 0, done.tail()
    code, planned = await job.cli(
        "partitions", "plan", "--count", "3", "--balance", "pages", cap=CAP
    )
    assert code == 0, planned.tail()
    assert _cut_lines(planned) == [BY_PAGES]
    code, shown = await job.cli("partitions", "show")
    assert code == 0, shown.tail()
    assert _cut_lines(shown) == [BY_PAGES]

    same = await _worker(job, sim, "1", "--max-friends", str(CAP))  # the plan's value
    assert not same.named("plan.max_friends_differs"), same.tail()
    other = await _worker(job, sim, "next")  # the default max_friends, 2000
    [warned] = other.named("plan.max_friends_differs")
    assert (warned["plan_max_friends"], warned["max_friends"]) == (CAP, 2000)
    assert warned["level"] == "warning"
    assert "--max-friends 300 (FRIENDSCRAPE_MAX_FRIENDS)" in warned["hint"], warned
    assert other.named("claim.none_left"), other.tail()
    rows_per_user = job.rows_per_user()
    assert len(rows_per_user) == USERS, rows_per_user
    assert set(rows_per_user.values()) == {1}, rows_per_user

    code, replanned = await job.cli("partitions", "plan", "--count", "3", "--force")
    assert code == 0, replanned.tail()
    code, shown = await job.cli("partitions", "show")
    assert _cut_lines(shown) == ["balanced by users"], shown.stdout_other
    after = await _worker(job, sim, "next")
    assert not after.named("plan.max_friends_differs"), after.tail()


async def test_the_store_records_the_cut_and_a_new_plan_replaces_it(store: Store) -> None:
    await store.import_users([User(str(i), f"u{i}", 30 * i) for i in range(1, 9)])
    assert await store.plan_cut() is None  # no plan yet: nothing recorded
    await store.plan_partitions(2, page_size=20, max_friends=CAP)
    assert await store.plan_cut() == PlanCut("pages", CAP, 20)
    await store.plan_partitions(2, max_friends=CAP)  # by users: no cap named
    assert await store.plan_cut() == PlanCut("users")


async def _planned_by_pages(tmp_path: Path, edit: str) -> list[str]:
    """A SQLite store of two users planned by pages, then ``edit`` run on it from outside
    friendscrape; the --store arguments naming it."""
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name,following_count\n1,a,5\n2,b,50\n", encoding="utf-8")
    db = tmp_path / "job.db"
    store = ["--store", f"sqlite:///{db}"]
    code, done = await run_cli(["users", "import", str(users), "--source", "bluesky", *store])
    assert code == 0, done.tail()
    code, done = await run_cli(["partitions", "plan", "--count", "2", "--balance", "pages", *store])
    assert code == 0, done.tail()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(edit)
        conn.commit()
    return store


async def test_an_older_store_shows_no_cut(tmp_path: Path) -> None:
    # As a store written before plans were recorded.
    store = await _planned_by_pages(tmp_path, "DROP TABLE job")
    code, shown = await run_cli(["partitions", "show", *store])
    assert code == 0, shown.tail()
    assert _cut_lines(shown) == [], shown.stdout_other
    assert shown.stdout_other[-1].split()[0] == "total"


async def test_a_record_another_program_damaged_reads_as_none(tmp_path: Path) -> None:
    """A cap that is not a whole number (the job table edited by hand) is no record:
    `partitions show` shows the plan without it, never a traceback."""
    edit = "UPDATE job SET value = 'lots' WHERE key = 'plan_max_friends'"
    store = await _planned_by_pages(tmp_path, edit)
    code, shown = await run_cli(["partitions", "show", *store])
    assert code == 0, shown.tail()
    assert _cut_lines(shown) == [], shown.stdout_other
    assert "Traceback" not in shown.stderr


WIDE = {"COLUMNS": "250"}  # status wraps its lines to the terminal: one line each here


async def _watched(job: Job, tmp_path: Path) -> tuple[list[str], dict[str, object], str]:
    """What a researcher watching the fleet sees: `status`'s fleet line, `status --json`'s
    ``plan_cut`` and the `report` page, each a separate process."""
    wide = replace(job, env={**job.env, **WIDE})
    code, status = await wide.cli("status")
    assert code == 0, status.tail()
    assert "Traceback" not in status.stderr
    code, as_json = await wide.cli("status", "--json")
    assert code == 0, as_json.tail()
    page = tmp_path / "report.html"
    page.unlink(missing_ok=True)
    code, reported = await wide.cli("report", "--output", str(page))
    assert code == 0, reported.tail()
    fleet = [line for line in status.stdout_other if line.startswith("fleet: ")]
    return fleet, json.loads("".join(as_json.stdout_other))["plan_cut"], page.read_text("utf-8")


async def _imported(job: Job, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    rows = "".join(f"{i},u{i},{(i % 4) * 400 + 5}\n" for i in range(1, 13))
    users.write_text("user_id,screen_name,following_count\n" + rows, encoding="utf-8")
    code, done = await job.cli("users", "import", str(users), "--source", "twitter-mobile")
    assert code == 0, done.tail()


async def test_status_and_report_say_how_the_fleet_was_cut(job: Job, tmp_path: Path) -> None:
    await _imported(job, tmp_path)
    code, planned = await job.cli(
        "partitions", "plan", "--count", "3", "--balance", "pages", cap=CAP
    )
    assert code == 0, planned.tail()
    fleet, cut, page = await _watched(job, tmp_path)
    assert fleet == [f"fleet: 3 partitions: 0 done, 0 held, 3 free; {BY_PAGES}"], fleet
    assert cut == {"balance": "pages", "max_friends": CAP, "page_size": 20}, cut
    assert f"Fleet: 3 partitions: 0 done, 0 held, 3 free; {BY_PAGES}</caption>" in page

    code, replanned = await job.cli("partitions", "plan", "--count", "3", "--balance", "users",
                                    "--force")  # fmt: skip
    assert code == 0, replanned.tail()
    fleet, cut, page = await _watched(job, tmp_path)
    assert fleet == ["fleet: 3 partitions: 0 done, 0 held, 3 free; balanced by users"], fleet
    assert cut == {"balance": "users", "max_friends": None, "page_size": None}, cut
    assert "Fleet: 3 partitions: 0 done, 0 held, 3 free; balanced by users</caption>" in page
    assert "balanced by pages" not in page


async def test_status_of_an_older_store_shows_the_fleet_without_a_cut(tmp_path: Path) -> None:
    db = tmp_path / "job.db"
    job = Job(f"sqlite:///{db}", clean_env())
    await _imported(job, tmp_path)
    code, done = await job.cli("partitions", "plan", "--count", "2", "--balance", "pages")
    assert code == 0, done.tail()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE job")  # as a store written before plans were recorded
        conn.commit()
    fleet, cut, page = await _watched(job, tmp_path)
    assert fleet == ["fleet: 2 partitions: 0 done, 0 held, 2 free"], fleet
    assert cut == {"balance": None, "max_friends": None, "page_size": None}, cut
    assert "Fleet: 2 partitions: 0 done, 0 held, 2 free</caption>" in page
    assert "balanced by" not in page
