"""A job collected in three waves against the churning simulator, every command a
process of its own, on each store: the second wave's run is killed with SIGKILL and
resumed; every wave's lists, every changes export and the waves' figures equal the
simulator's truth."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.simulator import SimConfig, SyntheticGraph
from reliability.harness import CliRun, clean_env, kill_now, run_cli, start_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 120
MEAN_FRIENDS = 25.0
CHURN = 0.2
WAVES = 3


def _config(wave: int, **extra: float) -> SimConfig:
    return SimConfig(users=USERS, mean_friends=MEAN_FRIENDS, wave=wave, churn=CHURN, **extra)


def _graph(wave: int) -> SyntheticGraph:
    return _config(wave).make_graph()


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]

    async def cli(self, *args: str, timeout: float = 120.0) -> tuple[int, CliRun]:
        return await run_cli([*args, "--store", self.url], env=self.env, timeout=timeout)

    async def ok(self, *args: str) -> CliRun:
        code, run = await self.cli(*args)
        assert code == 0, run.tail()
        return run


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


@pytest.fixture
def users_csv(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "screen_name", "following_count"])
        for account in _graph(1).accounts():
            writer.writerow([account.user_id, account.screen_name, account.following_count])
    return path


def _run_args(base_url: str) -> list[str]:
    return ["run", "--partition", "1", "--base-url", base_url, "--concurrency", "4"]


async def _collect(job: Job, wave: int, *, kill: bool = False) -> None:
    """Collect the current wave against the simulator of ``wave`` (killed once first)."""
    sim = start_simulator(_config(wave, latency=0.02 if kill else 0.0))
    try:
        base = _run_args(sim.base_url)
        if kill:
            run = await start_cli([*base, "--batch-size", "5", "--store", job.url], env=job.env)
            await run.wait_event("writer.flush")
            kill_now(run)
            assert await run.wait() == -9
        await job.ok(*base)
    finally:
        sim.stop()


def _truth_lists(wave: int) -> dict[str, tuple[str, list[str]]]:
    graph = _graph(wave)
    found = {}
    for account in graph.accounts():
        expected = graph.expected(account.screen_name)
        found[account.user_id] = (expected["status"], expected["friends"])
    return found


def _truth_changes(a: int, b: int) -> list[tuple[str, str, str]]:
    before, after = _truth_lists(a), _truth_lists(b)
    rows = []
    for user, (status_a, list_a) in before.items():
        status_b, list_b = after[user]
        if (status_a == "ok") != (status_b == "ok"):
            rows.append((user, "", "not_comparable"))
        elif status_a == "ok":
            rows += [(user, n, "follow") for n in list_b if n not in set(list_a)]
            rows += [(user, n, "unfollow") for n in list_a if n not in set(list_b)]
    return sorted(rows)


async def _status_counts(job: Job, wave: int, *, collected: int) -> None:
    """status counts the current wave's results, and names the earlier waves' totals."""
    document = json.loads("\n".join((await job.ok("status", "--json")).stdout_other))
    assert document["total"]["collected"] == collected
    note = next(n for n in document["notes"] if n.startswith(f"wave {wave} (opened"))
    assert f"Earlier waves: wave 1: {USERS} done" in note


async def _export(job: Job, out: Path, *args: str) -> Path:
    await job.ok("export", *args, "--output", str(out))
    return out


async def test_three_waves_killed_in_the_second_match_the_simulators_truth(
    job: Job, users_csv: Path, tmp_path: Path
) -> None:
    await job.ok("users", "import", str(users_csv), "--source", "twitter-mobile")
    await job.ok("partitions", "plan", "--count", "1")
    await _collect(job, 1)
    for wave in range(2, WAVES + 1):
        opened = await job.ok("waves", "new")
        assert f"opened wave {wave}" in "\n".join(opened.stdout_other)
        if wave == WAVES:  # status counts the new wave's results: none yet
            await _status_counts(job, wave, collected=0)
        await _collect(job, wave, kill=wave == 2)
    await _status_counts(job, WAVES, collected=USERS)

    # Every wave's lists, as exported, are the simulator's lists of that wave.
    for wave in range(1, WAVES + 1):
        out = await _export(job, tmp_path / f"w{wave}.jsonl", "--wave", str(wave))
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        truth = _truth_lists(wave)
        assert len(rows) == USERS  # exactly one row per user and wave
        got = {r["user_id"]: (r["status"], r["friend_names"]) for r in rows}
        assert got == truth, f"wave {wave}"

    # Every changes export is the truth's difference between the two waves.
    for a, b in ((1, 2), (2, 3), (1, 3)):
        out = await _export(
            job,
            tmp_path / f"c{a}{b}.csv",
            "--format",
            "changes",
            "--from-wave",
            str(a),
            "--to-wave",
            str(b),
        )
        with out.open(newline="") as read:
            got_rows = list(csv.DictReader(read))
        assert sorted((r["source_id"], r["target"], r["change"]) for r in got_rows) == (
            _truth_changes(a, b)
        ), f"{a} -> {b}"
        assert all(r["from_at"] < r["to_at"] for r in got_rows)
    changes_23 = _truth_changes(2, 3)
    assert any(c[2] == "follow" for c in changes_23)
    assert any(c[2] == "unfollow" for c in changes_23)

    # The default changes export is the latest wave's, in each table format alike.
    latest = await _export(job, tmp_path / "latest.jsonl", "--format", "changes")
    as_jsonl = sorted(
        (r["source_id"], r["target"], r["change"])
        for r in map(json.loads, latest.read_text().splitlines())
    )
    assert as_jsonl == changes_23
    parquet = await _export(job, tmp_path / "latest.parquet", "--format", "changes")
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = pq.read_table(parquet).to_pylist()
    assert sorted((r["source_id"], r["target"], r["change"]) for r in table) == changes_23

    # waves list: every wave, each user done once, the lists that changed.
    listed = json.loads("\n".join((await job.ok("waves", "list", "--json")).stdout_other))
    assert [w["wave"] for w in listed] == [1, 2, 3]
    assert all(w["users_done"] == USERS for w in listed)
    for w in listed[1:]:
        before, after = _truth_lists(w["wave"] - 1), _truth_lists(w["wave"])
        assert w["lists_changed"] == sum(before[u][1] != after[u][1] for u in before)
        assert w["lists_changed"] > 0


async def test_wave_refusals_are_one_line(job: Job, users_csv: Path, tmp_path: Path) -> None:
    await job.ok("users", "import", str(users_csv), "--source", "twitter-mobile")
    code, run = await job.cli("waves", "new")
    assert code == 2
    assert "the job has no partition plan: import users and plan partitions first" in run.stderr
    code, run = await job.cli("export", "--format", "changes", "--output", str(tmp_path / "c.csv"))
    assert code == 2
    assert "the job has one wave: open the next with 'friendscrape waves new'" in run.stderr
    code, run = await job.cli("export", "--wave", "4")
    assert code == 2
    assert "no wave 4: the job has waves 1 to 1" in run.stderr
    code, run = await job.cli("export", "--format", "edges", "--wave", "1")
    assert code == 2
    assert "--wave applies to --format jsonl or csv" in run.stderr
    assert "for wave 1's follows use --format csv --wave 1" in run.stderr
    code, run = await job.cli("export", "--format", "changes", "--wave", "1")
    assert code == 2
    assert "changes take --from-wave and --to-wave" in run.stderr
    assert "Traceback" not in run.stderr


async def test_two_waves_new_at_once_open_each_wave_once(job: Job, users_csv: Path) -> None:
    """Two `waves new` processes started together: each wave they open is opened once
    (the one that loses a race is refused in one line, exit 2), and the waves are
    numbered without a gap or a repeat."""
    await job.ok("users", "import", str(users_csv), "--source", "twitter-mobile")
    await job.ok("partitions", "plan", "--count", "1")
    runs = [await start_cli(["waves", "new", "--store", job.url], env=job.env) for _ in range(2)]
    codes = [await run.wait(120.0) for run in runs]
    opened = []
    for code, run in zip(codes, runs, strict=True):
        assert "Traceback" not in run.stderr
        if code == 0:
            line = "\n".join(run.stdout_other)
            opened.append(int(line.split("opened wave ", 1)[1].split(":", 1)[0]))
        else:
            assert code == 2, run.tail()
            assert "another 'friendscrape waves new' opened wave 2 at the same time" in run.stderr
    assert opened in ([2], [2, 3], [3, 2])
    listed = json.loads("\n".join((await job.ok("waves", "list", "--json")).stdout_other))
    assert [w["wave"] for w in listed] == list(range(1, max(opened) + 1))
    assert all(w["opened_at"] for w in listed)
