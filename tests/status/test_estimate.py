"""Sizing a job: memory-bound concurrency, workers for a deadline, prorated cost, tiers file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from friendscrape import cli
from friendscrape.commands.estimate.command import (
    Model,
    Tier,
    concurrency_for,
    estimate,
    load_tiers,
)
from friendscrape.errors import UsageError
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.sqlite import SqliteStore

MODEL = Model(rate=1000.0, rate_concurrency=100, max_concurrency=1000)


def test_packaged_tiers_are_heroku_s() -> None:
    tiers, hours = load_tiers()
    names = [t.name for t in tiers]
    assert names[:3] == ["eco", "basic", "standard-1x"]
    assert "performance-l" in names
    assert hours == 720
    assert all(t.memory_mb >= 512 and t.usd_per_month > 0 for t in tiers)


def test_concurrency_is_memory_bound() -> None:
    small = Tier("small", memory_mb=200, usd_per_month=1, max_workers=1)
    # (200 * 0.8 - 60) / 0.24 = 416
    assert concurrency_for(small, MODEL) == 416
    big = Tier("big", memory_mb=8000, usd_per_month=1, max_workers=1)
    assert concurrency_for(big, MODEL) == 1000


def test_cheapest_tier_meeting_the_deadline() -> None:
    tiers = [
        Tier("one", memory_mb=512, usd_per_month=7, max_workers=1),
        Tier("cheap", memory_mb=200, usd_per_month=10, max_workers=50),
        Tier("dear", memory_mb=8000, usd_per_month=100, max_workers=50),
    ]
    est = estimate(100_000, tiers, MODEL, deadline_days=5)
    one, cheap, dear = est.plans
    # one worker at concurrency 1000 does 10,000 users a day: 10 days, too slow
    assert not one.meets_deadline
    assert one.days == pytest.approx(10.0)
    # 416 in flight: 4,160 a day per worker; 5 days need ceil(100000/20800) = 5 workers
    assert cheap.workers == 5
    assert cheap.cost_usd == pytest.approx(5 * (100_000 / (5 * 4160)) * 24 * 10 / 720)
    assert dear.workers == 2
    assert est.best is not None
    assert est.best.tier == "cheap"


def test_budget_rules_out_a_plan() -> None:
    tiers = [Tier("dear", memory_mb=8000, usd_per_month=7200, max_workers=50)]
    est = estimate(100_000, tiers, MODEL, deadline_days=5, budget=100)
    assert est.plans[0].within_budget is False
    assert est.best is None


def test_pool_tier_is_flat_and_bounded() -> None:
    pool = Tier("eco", 512, 5, max_workers=1, billing="pool", pool_hours=1000)
    est = estimate(50_000, [pool], MODEL, deadline_days=10)
    assert est.plans[0].cost_usd == 5
    long_job = estimate(500_000, [pool], MODEL, deadline_days=60)
    assert long_job.plans[0].cost_usd == 10  # two months started


def test_bad_tiers_file(tmp_path: Path) -> None:
    bad = tmp_path / "tiers.json"
    bad.write_text('{"tiers": [{"name": "x"}]}')
    with pytest.raises(UsageError, match="cannot read tiers"):
        load_tiers(bad)


def test_estimate_command_with_own_tiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiers = tmp_path / "tiers.json"
    tiers.write_text(json.dumps({"tiers": [{"name": "w", "memory_mb": 1024, "usd_per_month": 72}]}))
    argv = ["estimate", "--users", "3600000", "--rate", "8000", "--tiers", str(tiers), "--json"]
    assert cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"]["tier"] == "w"
    # By default the measured rate is not extrapolated: 8,000 a day for 10 days each.
    assert doc["best"]["workers"] == 45
    assert cli.main([*argv, "--max-concurrency", "1000"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"]["workers"] == 3  # 20 times the measured concurrency of 50
    assert any("0.24 MB per user" in a for a in doc["assumptions"])
    assert cli.main(["estimate", "--users", "10"]) == 2
    assert "--rate" in capsys.readouterr().err


def test_estimate_from_status_takes_the_stores_rate_and_users_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'job.db'}"

    async def fill() -> None:
        store = SqliteStore.from_url(url)
        await store.open()
        await store.import_users([User(str(i), f"u{i}") for i in range(1, 201)])
        await store.plan_partitions(2)  # 1..100 and 101..200
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # 100 users of partition 1 over one hour: 2,400 users a day.
        await store.save(
            [
                FriendList(
                    str(i),
                    f"u{i}",
                    Status.OK,
                    "twitter-mobile",
                    1,
                    start + timedelta(seconds=36 * (i - 1)),
                    start + timedelta(seconds=36 * i),
                    ("a",),
                )
                for i in range(1, 101)
            ]
        )
        await store.close()

    asyncio.run(fill())
    argv = ["estimate", "--from-status", "--store", url, "--deadline-days", "10", "--json"]
    assert cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["users"] == 100  # the users left
    assert doc["model"]["rate"] == pytest.approx(2400, rel=0.01)
