"""Building the status report from aggregates: rates, borrowed rates, ETA, output forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from friendscrape import cli
from friendscrape.commands.progress.durations import human_duration, span_words, window_label
from friendscrape.commands.progress.figures import build_report
from friendscrape.commands.status.command import to_json
from friendscrape.commands.status.table import WIDTH, render_table
from friendscrape.models import Partition
from friendscrape.stores.base import LeaseHolder, RunSample, SampleBucket, StatusSummary

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


def live(*parts: int) -> dict[int, LeaseHolder]:
    """Live leases on ``parts``, held by a run on another host (alive until they lapse)."""
    return {
        n: LeaseHolder("worker.example", 100 + n, f"run{n}", NOW + timedelta(minutes=5), NOW)
        for n in parts
    }


def table_lines(text: str) -> list[str]:
    """The table's lines: from its heading (the job's line above it aside)."""
    lines = text.splitlines()
    return lines[next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["part"]) :]


def test_running_partitions_run_at_their_own_rate_and_an_idle_one_is_not_running() -> None:
    # Before issue 23 partition 3 (nobody running it) got an ETA as if a worker started
    # now, and each rate was the last hour's: now it is over each partition's active time.
    rows = [
        summary(1, "ok", 48, hours_ago=5, span_h=4, recent=2),  # 48 in 4 h: 288/day
        summary(2, "ok", 20, hours_ago=2, span_h=2, recent=4),  # 20 in 2 h: 240/day
    ]
    report = build_report(PLAN, rows, now=NOW, leases=live(1, 2))
    p1, p2, p3 = report.partitions
    # Partition 1 ended its last result an hour ago but its lease is live: to now.
    assert p1.per_day_overall == pytest.approx(48 / 5 * 24)
    assert p2.per_day_overall == pytest.approx(240.0)
    assert p1.eta_seconds == pytest.approx(52 / (48 / 5 * 24) * 86400)
    assert p3.collected == 0
    assert p3.eta_seconds is None
    assert not p3.running
    assert p1.running
    assert report.total.per_day_overall == pytest.approx(48 / 5 * 24 + 240)
    assert report.total.eta_seconds == pytest.approx(182 / (48 / 5 * 24 + 240) * 86400)
    assert report.facts is not None
    assert report.facts.workers_needed == 3
    assert report.facts.eta_all_estimated, "partition 3 at one worker's mean rate"
    table = table_lines(render_table(report, width=200))
    assert table[3].endswith("not running")
    doc = to_json(report)
    assert doc["partitions"][2]["running"] is False
    assert doc["partitions"][2]["lease_holder"] is None
    assert doc["partitions"][0]["lease_holder"]["host"] == "worker.example"
    assert report.total.statuses["ok"] == 68
    assert report.total.avg_friends == pytest.approx(10.0)


def test_a_finished_partitions_rate_stays_put_after_it_ends() -> None:
    rows = [summary(1, "ok", 100, hours_ago=3, span_h=2, recent=50)]
    then = build_report(PLAN, rows, now=NOW - timedelta(hours=1))
    later = build_report(PLAN, rows, now=NOW + timedelta(hours=5))
    rates = [r.partitions[0].per_day_overall for r in (then, later)]
    assert rates == [pytest.approx(1200.0), pytest.approx(1200.0)]


def test_no_rate_anywhere_means_no_eta() -> None:
    report = build_report(PLAN, [], now=NOW)
    assert all(p.eta_seconds is None for p in report.partitions)
    assert report.total.eta_seconds is None
    assert report.total.remaining == 250
    total = next(ln for ln in render_table(report).splitlines() if ln.startswith("total"))
    assert total.split()[-1] == "running", "none running"


def test_complete_job_has_zero_eta() -> None:
    plan = [Partition(1, 3, "1", "3")]
    rows = [
        summary(1, "ok", 2, hours_ago=30, span_h=1),
        summary(1, "suspended", 1, hours_ago=30, span_h=1),
    ]
    report = build_report(plan, rows, now=NOW)
    assert report.total.eta_seconds == 0
    assert report.total.percent_done == 100
    assert report.partitions[0].per_day_overall == pytest.approx(72.0)
    assert report.total.per_day_overall is None, "nothing runs: the total's rate is none"
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
    table = table_lines(capsys.readouterr().out)
    assert table[0].split()[:3] == ["part", "done", "left"]
    assert table[3].split()[:4] == ["total", "0", "3", "0.0"]


def big_job(parts: int = 10, users: int = 3_600_000) -> tuple[list[Partition], list[StatusSummary]]:
    """A job of 36 million users, most of each partition done, in every status."""
    plan = [Partition(n, users, str(n), str(n)) for n in range(1, parts + 1)]
    rows = []
    for n in range(1, parts + 1):
        for status, share in (("ok", 0.6), ("protected", 0.05), ("failed", 0.01)):
            rows.append(
                StatusSummary(
                    partition=n,
                    status=status,
                    users=int(users * share),
                    friends=int(users * share) * 550,
                    seconds=users * share * 3.2,
                    first_start=NOW - timedelta(days=20),
                    last_end=NOW - timedelta(seconds=5),
                    recent=123_456,
                )
            )
    return plan, rows


def learned_samples(parts: int) -> tuple[dict[int, RunSample], list[SampleBucket]]:
    latest = {
        n: RunSample(
            run_id=f"run{n}",
            partition=n,
            at=NOW - timedelta(seconds=10),
            source="x-api",
            upstream_host="api.x.com",
            simulated=False,
            learned_rate=148.25 + n,
        )
        for n in range(1, parts + 1)
    }
    buckets = [
        SampleBucket(NOW - timedelta(hours=1), n, 10, 900_000, 98_765, 12_345.0, 148.25 + n, 240)
        for n in range(1, parts + 1)
    ]
    return latest, buckets


def test_the_default_table_fits_100_columns_and_wide_shows_every_column() -> None:
    plan, rows = big_job()
    latest, buckets = learned_samples(10)
    report = build_report(
        plan, rows, now=NOW, samples=latest, buckets=buckets, unplaced=1234, leases=live(1, 2)
    )
    table = render_table(report, width=WIDTH)
    lines = table_lines(table)
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, "\n".join(too_wide)
    head = lines[0].split()
    assert head[:4] == ["part", "done", "left", "%"]
    assert {"429s", "paused", "learned", "ETA"} <= set(head)
    assert "prot" not in head
    assert lines[11].split()[0] == "total"
    assert "149.2/s" in lines[1], "partition 1's learned rate"

    wide = table_lines(render_table(report, wide=True, width=WIDTH))
    wide_head = wide[0]
    for column in ("users", "prot", "nfound", "friends", "lat/user", "users/day 1h", "first start"):
        assert column in wide_head
    assert "s/user" not in wide_head.replace("lat/user", "")
    assert max(len(line) for line in wide) > WIDTH


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (60, "60s"),
        (90, "90s"),
        (900, "15m"),
        (3600, "1h"),
        (5400, "90m"),
        (86400, "1d"),
        (0.5, "0.5s"),
    ],
)
def test_window_labels(seconds: float, label: str) -> None:
    assert window_label(seconds) == label


def test_the_window_asked_heads_the_column_and_short_data_is_said() -> None:
    # The first result ended 3.6 minutes ago: a 1h window holds 3.6 minutes of data.
    rows = [summary(1, "ok", 30, hours_ago=0.06, span_h=0.05, recent=30)]
    report = build_report(PLAN, rows, now=NOW, window=3600)
    table = render_table(report, wide=True)
    assert "users/day 1h" in table_lines(table)[0]
    assert "over the last 3.6 min of data" in table
    assert "0.06" not in table
    doc = to_json(report)
    assert doc["window_seconds"] == 3600
    assert doc["window"] == "1h"
    assert doc["data_seconds"] == pytest.approx(216.0)
    assert doc["partitions"][0]["recent_data_seconds"] == pytest.approx(216.0)
    assert span_words(216) == "3.6 min"

    minute = build_report(PLAN, rows, now=NOW, window=60)
    assert "users/day 60s" in table_lines(render_table(minute, wide=True))[0]
    assert "of data" not in render_table(minute, wide=True), "a full minute of data"
    assert to_json(minute)["window_seconds"] == 60


def test_unstarted_partitions_are_not_running_and_the_job_eta_says_with_how_many() -> None:
    # Partitions 1 and 2 are finished; 3 has not started: 50 users left. Before issue 23
    # partition 3 showed ~8h as if it ran; nobody runs it, so only the job's ETA with
    # one worker per partition left (at the finished ones' mean rate) says 8h.
    rows = [
        summary(1, "ok", 100, hours_ago=30, span_h=24),  # 100 a day overall
        summary(2, "ok", 100, hours_ago=30, span_h=12),  # 200 a day overall
    ]
    report = build_report(PLAN, rows, now=NOW)
    p3 = report.partitions[2]
    assert p3.eta_seconds is None
    assert report.total.eta_seconds is None
    assert report.facts is not None
    assert report.facts.eta_all_seconds == pytest.approx(50 / 150 * 86400)
    assert report.facts.eta_all_estimated
    text = render_table(report, width=200)
    table = table_lines(text)
    assert table[3].endswith("not running")
    assert table[4].endswith("none running")
    assert "With 1 workers (one per partition with users left): ETA ~8h 00m." in text
    doc = to_json(report)
    assert doc["eta_all_workers"]["eta_seconds"] == pytest.approx(50 / 150 * 86400)
    assert doc["partitions"][2]["running"] is False


def test_users_outside_the_plan_get_an_estimated_eta_not_a_dash() -> None:
    rows = [summary(n, "ok", 100 if n < 3 else 50, hours_ago=30, span_h=24) for n in (1, 2, 3)]
    report = build_report(PLAN, rows, now=NOW, unplaced=1200)
    assert report.total.remaining == 1200
    assert report.facts is not None
    assert report.facts.eta_all_seconds is not None
    assert report.facts.eta_all_estimated


def test_run_samples_show_learned_rate_429s_pauses_and_the_simulator() -> None:
    rows = [summary(1, "ok", 48, hours_ago=5, span_h=4, recent=2)]
    latest = {
        1: RunSample(
            "r1", 1, NOW, "twitter-mobile", "127.0.0.1:8123", simulated=True, learned_rate=41.5
        ),
    }
    buckets = [
        SampleBucket(NOW - timedelta(hours=1), 1, 5, 90, 7, 30.0, 40.0, 3),
        SampleBucket(NOW, 1, 2, 30, 2, 5.0, 41.5, 1),
    ]
    report = build_report(PLAN, rows, now=NOW, samples=latest, buckets=buckets)
    p1 = report.partitions[0]
    assert p1.run is not None
    assert (p1.run.rate_limited, p1.run.paused_seconds, p1.run.learned_rate) == (9, 35.0, 41.5)
    table = render_table(report)
    assert "rates measured against a local simulator (127.0.0.1:8123), not a real upstream" in table
    cells = table_lines(table)[1].split()
    assert {"9", "35s", "41.5/s"} <= set(cells)
    doc = to_json(report)
    row = doc["partitions"][0]
    assert (row["rate_limited"], row["paused_seconds"], row["learned_rate"]) == (9, 35.0, 41.5)
    assert (row["upstream_host"], row["simulated"]) == ("127.0.0.1:8123", True)
    assert doc["partitions"][1]["rate_limited"] is None, "no run of partition 2 yet"
    assert doc["total"]["simulated"] is True
    assert any("local simulator" in note for note in doc["notes"])


def test_the_documented_example_is_what_status_prints() -> None:
    """docs/monitoring.md's table: built again from the figures it shows, line for line
    (the partitions it elides aside)."""
    docs = Path(__file__).parents[2] / "docs" / "monitoring.md"
    text = docs.read_text(encoding="utf-8")
    start = text.index("    friendscrape status --store bigquery://PROJECT/DATASET\n")
    shown = text[start:].split("\n\n", 1)[0].splitlines()[1:]
    plan = [Partition(n, 360000, str(n), str(n)) for n in range(1, 11)]
    rows, samples, buckets = [], {}, []
    for n in range(1, 10):
        done = 212004 - n * 3111
        for status, share in (("ok", 0.95), ("protected", 0.028), ("not_found", 0.01)):
            rows.append(
                StatusSummary(
                    n,
                    status,
                    int(done * share),
                    int(done * share) * 520,
                    done * share * 3.3,
                    NOW - timedelta(days=1, hours=9, minutes=n),
                    NOW - timedelta(seconds=20),
                    6100 - n * 40 if status == "ok" else 30,
                )
            )
        rows.append(
            StatusSummary(n, "failed", int(done * 0.012), 0, 1.0, NOW - timedelta(days=1), NOW, 30)
        )
        samples[n] = RunSample(
            f"r{n}", n, NOW, "twitter-mobile", "mobile.example.org", simulated=False
        )
        buckets.append(
            SampleBucket(NOW - timedelta(minutes=30), n, 6000, 12000, 14 + n, 31.0 + n, None, 240)
        )
    report = build_report(
        plan, rows, now=NOW, samples=samples, buckets=buckets, leases=live(*range(1, 10))
    )
    printed = [line.rstrip() for line in render_table(report, width=WIDTH).splitlines()]
    kept = [line[4:] for line in shown if line.strip() != "..."]
    assert kept == [line for line in printed if line in kept or not line.startswith("    ")]
