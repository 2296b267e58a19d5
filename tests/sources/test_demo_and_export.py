"""Each API source end to end through `demo`, and its ids in every export format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from friendscrape.commands import demo
from friendscrape.commands.export import export
from friendscrape.config import Settings
from friendscrape.core.pipeline import RunSummary
from friendscrape.errors import UsageError
from friendscrape.models import FriendList, Status


@pytest.mark.parametrize("source", ["x-api", "bluesky", "mastodon"])
async def test_demo_collects_every_source_true_to_the_simulator(
    tmp_path: Path, source: str
) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'demo.db'}")
    said: list[str] = []
    result = await demo.run_demo(
        settings,
        users=200,
        partitions=2,
        latency=0.0,
        concurrency=10,
        source=source,
        say=said.append,
    )
    out = demo.render(result)
    assert result.exit_code == 0, out
    assert "200 users" in out
    assert "all lists match the simulator's truth" in out
    # The first line names the platform the simulator serves.
    assert f"({source})" in said[0]


def _summary(partition: int, users: int, seconds: float) -> RunSummary:
    statuses = {"ok": users - 3, "deactivated": 1, "not_found": 2}
    return RunSummary(partition, users, users, statuses, 10 * users, users, seconds, stopped=False)


def test_demo_table_shows_whole_headers_and_says_why_rates_differ() -> None:
    # Partition 2 ended early: its own rate is higher than its share of the wall time.
    result = demo.DemoResult([_summary(1, 600, 60.0), _summary(2, 400, 20.0)], 60.0, 0)
    lines = demo.render(result).splitlines()
    header = lines[0]
    assert header.split() == [
        "part",
        "users",
        *(s.value for s in Status),
        "avg",
        "friends",
        "users/min",
    ]
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert set(rows) == {"1", "2", "all"}
    col = header.index("deactivated") + len("deactivated")
    deactivated = {k: line[:col].split()[-1] for k, line in rows.items()}
    assert deactivated == {"1": "1", "2": "1", "all": "2"}  # right under its whole header
    assert all(len(line) == len(header) for line in rows.values())
    assert rows["all"].split()[1] == "1000"
    rates = {k: int(v.split()[-1]) for k, v in rows.items()}
    assert rates == {"1": 600, "2": 1200, "all": 1000}
    assert rates["1"] + rates["2"] > rates["all"]
    note = "\n".join(lines[4:7])
    assert note == "\n".join(demo.RATES_NOTE)
    assert "own run time" in note
    assert "wall time" in note
    assert lines[-1] == "1000 users in 60.0s; all lists match the simulator's truth."
    alone = demo.render(demo.DemoResult([_summary(1, 600, 60.0)], 60.0, 0))
    assert "own run time" not in alone  # one partition: nothing to add up


async def test_demo_refuses_an_unknown_source(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'demo.db'}")
    with pytest.raises(UsageError, match="unknown source 'friendster'"):
        await demo.run_demo(
            settings, users=10, partitions=1, latency=0.0, concurrency=1, source="friendster"
        )


def _row(source: str, names: tuple[str, ...], ids: tuple[str, ...]) -> FriendList:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return FriendList(
        user_id="1",
        screen_name="alice.bsky.social",
        status=Status.OK,
        source=source,
        partition=1,
        start_at=now,
        end_at=now,
        friend_names=names,
        friend_ids=ids,
    )


async def _rows(*rows: FriendList) -> AsyncIterator[FriendList]:
    for row in rows:
        yield row


async def test_every_export_carries_friend_ids_and_source(tmp_path: Path) -> None:
    with_ids = _row("bluesky", ("bsky.app", "jay.bsky.team"), ("did:plc:a", "did:plc:b"))
    without = _row("twitter-mobile", ("ada",), ())
    out = tmp_path / "edges.csv"
    assert await export(_rows(with_ids, without), "csv", out) == 2
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert table == [
        ["user_id", "screen_name", "friend_name", "friend_id", "source"],
        ["1", "alice.bsky.social", "bsky.app", "did:plc:a", "bluesky"],
        ["1", "alice.bsky.social", "jay.bsky.team", "did:plc:b", "bluesky"],
        ["1", "alice.bsky.social", "ada", "", "twitter-mobile"],
    ]
    lines = tmp_path / "rows.jsonl"
    await export(_rows(with_ids), "jsonl", lines)
    row = json.loads(lines.read_text())
    assert row["friend_ids"] == ["did:plc:a", "did:plc:b"]
    assert row["source"] == "bluesky"
