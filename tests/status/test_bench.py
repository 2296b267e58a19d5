"""`bench`: a real trial against the simulator in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from friendscrape import cli
from friendscrape.commands.bench import parse_grid, render, run_trials
from friendscrape.commands.bench_options import TrialConfig
from friendscrape.configdoc import environ_without_configuration
from friendscrape.errors import UsageError


def test_parse_grid() -> None:
    assert parse_grid("10, 50,200") == (10, 50, 200)
    with pytest.raises(UsageError):
        parse_grid("10,x")
    with pytest.raises(UsageError):
        parse_grid("0")


async def test_trial_counts_users_friends_and_429s() -> None:
    config = TrialConfig(
        concurrency=(8,), users=40, latency=0.0, mean_friends=30, rate_limit_rate=0.1
    )
    said: list[str] = []
    (result,) = await run_trials(config, say=said.append)
    assert result.concurrency == 8
    assert result.users == 40
    assert result.friends_per_user is not None
    assert result.friends_per_user > 0
    assert 0 < result.share_429 < 0.5
    assert result.peak_rss_mb > 10
    assert result.users_per_min > 0
    table = render(config, [result]).splitlines()
    assert table[1].split()[:5] == ["conc.", "users", "minutes", "wall", "s/user"]
    row = table[-1].split()
    assert row[:2] == ["8", "40"]
    assert float(row[3]) == pytest.approx(result.seconds / 40, abs=0.001)  # wall s/user
    assert said[0] == "trial 1/1: concurrency 8, up to 60s against the simulator..."
    assert said[1].startswith("trial 1/1 done: concurrency 8: 40 users in ")
    assert "users/min" in said[1]
    assert "(simulator figures)" in said[1]
    assert len(said) == 2


def test_bench_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--concurrency", "3", "--users", "12", "--latency", "0", "--json"]
    assert cli.main([*argv, "--mean-friends", "10"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["users"] == 12
    assert {"users_per_hour", "users_per_day", "peak_rss_mb", "share_429"} <= set(row)


def test_bench_prints_each_trial_as_it_ends_then_the_table() -> None:
    argv = ["bench", "--concurrency", "2,3", "--users", "12", "--latency", "0"]
    proc = subprocess.Popen(  # a new process, as users run it
        [sys.executable, "-m", "friendscrape.cli", *argv, "--mean-friends", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ_without_configuration(os.environ),
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("trial 1/2 done"):
            # Shown while trial 2 has yet to run (it starts its own simulator process).
            assert proc.poll() is None
            break
    lines.extend(proc.stderr)  # the rest, read through the same buffer
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, "".join(lines)
    said = [line for line in lines if line.startswith("trial")]
    assert [line.split(":")[0].split(" done")[0] for line in said] == [
        "trial 1/2",
        "trial 1/2",
        "trial 2/2",
        "trial 2/2",
    ]
    assert "done: concurrency 2: 12 users" in said[1]
    table = out.splitlines()
    assert "wall s/user" in table[1]
    assert [row.split()[0] for row in table[2:]] == ["2", "3"]
