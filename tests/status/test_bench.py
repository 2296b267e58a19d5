"""`bench`: a real trial against the simulator in its own process."""

from __future__ import annotations

import json

import pytest

from friendscrape import cli
from friendscrape.commands.bench import TrialConfig, parse_grid, render, run_trials
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
    (result,) = await run_trials(config)
    assert result.concurrency == 8
    assert result.users == 40
    assert result.friends_per_user is not None
    assert result.friends_per_user > 0
    assert 0 < result.share_429 < 0.5
    assert result.peak_rss_mb > 10
    assert result.users_per_min > 0
    row = render(config, [result]).splitlines()[-1].split()
    assert row[:2] == ["8", "40"]


def test_bench_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--concurrency", "3", "--users", "12", "--latency", "0", "--json"]
    assert cli.main([*argv, "--mean-friends", "10"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["users"] == 12
    assert {"users_per_hour", "users_per_day", "peak_rss_mb", "share_429"} <= set(row)
