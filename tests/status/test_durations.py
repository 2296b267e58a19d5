"""A length of time reads the same in the status table's legend and in an estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from friendscrape.commands.estimate.command import Model, Tier, estimate, render
from friendscrape.commands.progress.durations import days_words, span_words
from friendscrape.commands.progress.figures import build_report
from friendscrape.commands.status.table import render_table
from friendscrape.models import Partition
from friendscrape.stores.base import StatusSummary

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.01, "under 0.1 s"),
        (45, "45.0 s"),
        (216, "3.6 min"),
        (5400, "1.5 hours"),
        (86400, "1.00 days"),
        (3.2 * 86400, "3.20 days"),
        (1000 * 86400, "1,000.00 days"),
    ],
)
def test_one_length_of_time_is_said_one_way(seconds: float, words: str) -> None:
    assert span_words(seconds) == words
    assert days_words(seconds / 86400) == words


def _legend_with_data_younger_than_the_window(age: timedelta, window: float) -> str:
    start = NOW - age
    row = StatusSummary(
        partition=1,
        status="ok",
        users=30,
        friends=300,
        seconds=60.0,
        first_start=start,
        last_end=NOW,
        recent=30,
    )
    report = build_report([Partition(1, 100, "1", "100")], [row], now=NOW, window=window)
    return render_table(report, wide=True)  # the window's column is in the wide table


def test_the_status_legend_and_the_estimate_say_a_duration_alike() -> None:
    # 1.5 hours of data in a 2h window: the legend says how much data the rate is over.
    table = _legend_with_data_younger_than_the_window(timedelta(hours=1.5), 7200)
    assert "over the last 1.5 hours of data" in table
    # A job that takes 1.5 hours on one worker: the estimate says it the same way.
    tier = Tier("one", memory_mb=1024, usd_per_month=25, max_workers=1)
    model = Model(rate=16000, rate_concurrency=100, max_concurrency=100)
    est = estimate(1000, [tier], model, deadline_days=1)
    assert est.best is not None
    assert est.best.days == pytest.approx(1.5 / 24)
    assert "1.5 hours" in render(est)
