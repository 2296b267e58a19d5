"""The CLI on a temporary store: import (with bad rows), plan, show, run, export."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from cli.conftest import cli
from friendscrape.simulator import SyntheticGraph, write_users_csv
from friendscrape.simulator.process import SimulatorProcess


def test_import_reports_bad_rows_by_line_and_keeps_the_good(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name,following_count\n"
        "12,ada,5\n"
        "13,,4\n"  # line 3: no screen name
        "14,grace,many\n"  # line 4: bad count
        "12,ada,5\n"  # duplicate collapses
        "15,linus\n",
        encoding="utf-8",
    )
    first = cli("users", "import", str(users), cwd=tmp_path)
    assert first.code == 1
    assert "line 3" in first.err
    assert "line 4" in first.err
    assert "2 users added" in first.out
    assert "1 duplicates collapsed" in first.out
    again = cli("users", "import", str(users), cwd=tmp_path)
    assert "0 users added" in again.out
    with sqlite3.connect(tmp_path / "friendscrape.db") as db:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 2


def test_bad_header_is_one_clear_line(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("id,name\n1,a\n", encoding="utf-8")
    result = cli("users", "import", str(users), cwd=tmp_path)
    assert result.code == 2
    assert result.err.strip().count("\n") == 0
    assert "header must be user_id,screen_name" in result.err


def test_plan_show_run_export(tmp_path: Path, sim_process: SimulatorProcess) -> None:
    graph = SyntheticGraph(150, seed=7, mean_friends=60)
    users = tmp_path / "users.csv"
    write_users_csv(graph, users)
    assert cli("users", "import", str(users), cwd=tmp_path).code == 0

    plan = cli("partitions", "plan", "--count", "3", cwd=tmp_path)
    assert plan.code == 0, plan.err
    lines = plan.out.strip().splitlines()
    assert lines[0].split() == ["partition", "users", "min_user_id", "max_user_id"]
    assert [line.split()[1] for line in lines[1:4]] == ["50", "50", "50"]
    assert cli("partitions", "show", cwd=tmp_path).out == plan.out

    run = cli(
        "run",
        "--partition",
        "2",
        "--source",
        "twitter-mobile",
        "--base-url",
        sim_process.base_url,
        "--concurrency",
        "10",
        cwd=tmp_path,
        env={"FRIENDSCRAPE_LOG_FORMAT": "json"},
    )
    assert run.code == 0, run.err
    assert run.out == ""  # a run's logs go to stderr; stdout is for results
    events = [json.loads(line) for line in run.err.splitlines()]
    assert all(e["partition"] == 2 and e["run_id"] for e in events)
    assert all(e["timestamp"].endswith("Z") or "+00:00" in e["timestamp"] for e in events)
    finished = next(e for e in events if e["event"] == "run.finished")
    assert finished["users"] == 50

    replan = cli("partitions", "plan", "--count", "2", cwd=tmp_path)
    assert replan.code == 2
    assert "--force" in replan.err

    out = tmp_path / "friends.jsonl"
    assert cli("export", "--format", "jsonl", "--output", str(out), cwd=tmp_path).code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 50
    for row in rows:
        assert set(row) >= {
            "user_id",
            "screen_name",
            "friend_count",
            "friend_names",
            "following_count",
            "truncated",
            "status",
            "error",
            "source",
            "partition",
            "attempts",
            "start_at",
            "end_at",
        }
        assert row["friend_count"] == len(row["friend_names"])
        assert isinstance(row["truncated"], bool)
        if row["status"] == "ok":
            assert row["friend_names"] == graph.friends(row["screen_name"])[:2000]

    edges = cli("export", "--format", "csv", cwd=tmp_path)
    table = list(csv.reader(io.StringIO(edges.out)))
    assert table[0] == ["user_id", "screen_name", "friend_name", "friend_id", "source"]
    assert len(table) - 1 == sum(r["friend_count"] for r in rows)
    # twitter-mobile pages give no ids: the column is there, and empty.
    assert {edge[3] for edge in table[1:]} == {""}
    assert {edge[4] for edge in table[1:]} == {"twitter-mobile"}


def test_legacy_environment_names_are_accepted(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    graph = SyntheticGraph(150, seed=7, mean_friends=60)
    users = tmp_path / "users.csv"
    write_users_csv(graph, users)
    cli("users", "import", str(users), "--source", "twitter-mobile", cwd=tmp_path)
    cli("partitions", "plan", "--count", "3", cwd=tmp_path)
    run = cli(
        "run",
        "--partition",
        "1",
        "--base-url",
        sim_process.base_url,
        cwd=tmp_path,
        env={
            "USERS_LIMIT": "5",
            "MAX_THREADS": "3",
            "BATCH_SIZE": "2",
            "MAX_FRIENDS": "10",
            "FRIENDSCRAPE_LOG_FORMAT": "json",
        },
    )
    assert run.code == 0, run.err
    started = next(json.loads(x) for x in run.err.splitlines() if "run.started" in x)
    assert started["concurrency"] == 3
    assert started["batch_size"] == 2
    assert started["max_friends"] == 10
    with sqlite3.connect(tmp_path / "friendscrape.db") as db:
        assert db.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0] == 5
        assert db.execute("SELECT MAX(friend_count) FROM user_friends").fetchone()[0] <= 10


def test_demo_runs_small(tmp_path: Path) -> None:
    result = cli("demo", "--users", "200", "--partitions", "4", "--latency", "0", cwd=tmp_path)
    assert result.code == 0, result.err
    # A platform live today by default, not the legacy site's 2020 design.
    assert "serving Bluesky's public API (bluesky)" in result.err
    assert "all lists match the simulator's truth" in result.out
    table = [line.split() for line in result.out.splitlines() if line.split()[:1] == ["all"]]
    assert table
    assert table[0][1] == "200"
    # The demo's store is a job of its source, as `users import --source` makes one.
    with sqlite3.connect(tmp_path / "friendscrape-demo.db") as conn:
        facts = dict(conn.execute("SELECT key, value FROM job").fetchall())
        # ... and its plan records how it was cut (by users: no cap named).
        assert facts == {"platform": "bluesky", "plan_balance": "users"}
    # Its runs record samples as `run`'s do: the report counts the four runs and says, in a
    # banner, that their rates were measured against the local simulator.
    report = cli("report", "--store", "sqlite:///friendscrape-demo.db", cwd=tmp_path)
    assert report.code == 0, report.err
    assert '<p class="banner" id="simulated" role="note"><strong>Simulated:</strong>' in report.out
    assert "<dt>workers seen</dt><dd>4 runs</dd>" in report.out
