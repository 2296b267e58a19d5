"""Building the status report from aggregates: rates, borrowed rates, ETA, output forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from friendscrape import cli
from friendscrape.commands.status import build_report, human_duration, render_table, to_json
from friendscrape.models import Partition
from friendscrape.stores.base import StatusSummary

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def summary(
    part: int, status: str, users: int, *, hours_ago: float, span_h: float, recent: int = 0
) -> StatusSummary:
    start = NOW - timedelta(hours=hours_ago)
    return StatusSummary(
        partition=part,
        status=status,
        users=users,
        friends=users * 10,
        seconds=users * 2.0,
        first_start=start,
        last_end=start + timedelta(hours=span_h),
        recent=recent,
    )


PLAN = [Partition(1, 100, "1", "100"), Partition(2, 100, "101", "200"), Partition(3, 50, "x", "y")]


def test_unstarted_partition_borrows_the_mean_rate() -> None:
    rows = [
        summary(1, "ok", 48, hours_ago=5, span_h=4, recent=2),  # 48/day over the last hour
        summary(2, "ok", 20, hours_ago=2, span_h=2, recent=4),  # 96/day
    ]
    report = build_report(PLAN, rows, now=NOW)
    p1, p2, p3 = report.partitions
    assert p1.eta_seconds == pytest.approx(52 / 48 * 86400)
    assert p2.eta_seconds == pytest.approx(80 / 96 * 86400)
    assert p3.collected == 0
    assert p3.eta_seconds == pytest.approx(50 / 72 * 86400)  # mean of 48 and 96
    assert report.total.eta_seconds == p1.eta_seconds
    assert report.total.statuses["ok"] == 68
    assert report.total.avg_friends == pytest.approx(10.0)


def test_no_rate_anywhere_means_no_eta() -> None:
    report = build_report(PLAN, [], now=NOW)
    assert all(p.eta_seconds is None for p in report.partitions)
    assert report.total.eta_seconds is None
    assert report.total.remaining == 250
    assert "-" in render_table(report).splitlines()[-2]


def test_complete_job_has_zero_eta() -> None:
    plan = [Partition(1, 3, "1", "3")]
    rows = [
        summary(1, "ok", 2, hours_ago=30, span_h=1),
        summary(1, "suspended", 1, hours_ago=30, span_h=1),
    ]
    report = build_report(plan, rows, now=NOW)
    assert report.total.eta_seconds == 0
    assert report.total.percent_done == 100
    assert report.total.per_day_overall == pytest.approx(72.0)
    assert report.total.per_day_last_hour == 0
    assert "done" in render_table(report)


def test_without_a_plan_totals_count_the_users_table() -> None:
    rows = [summary(0, "ok", 5, hours_ago=1, span_h=0.5, recent=5)]
    report = build_report([], rows, now=NOW, user_count=25)
    assert report.total.users == 25
    assert report.total.remaining == 20
    assert not report.planned
    assert to_json(report)["planned"] is False
    assert report.notes


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "done"),
        (42, "42s"),
        (600, "10m"),
        (3 * 3600 + 300, "3h 05m"),
        (90000, "1d 1h"),
    ],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_status_command_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,a1234\n2,b1234\n3,c1234\n")
    store = f"sqlite:///{tmp_path / 'fs.db'}"
    assert cli.main(["users", "import", str(users), "--store", store]) == 0
    assert cli.main(["partitions", "plan", "--count", "2", "--store", store]) == 0
    capsys.readouterr()
    assert cli.main(["status", "--json", "--store", store]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert [p["users"] for p in doc["partitions"]] == [2, 1]
    assert doc["total"]["remaining"] == 3
    assert doc["total"]["eta_seconds"] is None
    assert cli.main(["status", "--store", store]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["part", "users", "done"]
    assert table[3].split()[:4] == ["total", "3", "0", "3"]
