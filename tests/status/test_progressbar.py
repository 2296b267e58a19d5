"""The live progress bar: rendering, log lines above it, and a real run driving it."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import structlog
from tqdm.utils import disp_len

from friendscrape import logs
from friendscrape.commands.run.progressbar import (
    FALLBACK_WIDTH,
    LiveLine,
    live_progress,
    render,
    terminal_width,
    wants_bar,
)
from friendscrape.config import Settings
from friendscrape.configparts import source_config, store_config
from friendscrape.core.assemble import run_config
from friendscrape.core.pipeline import PartitionRun
from friendscrape.models import User
from friendscrape.simulator import SimConfig, run_simulator
from friendscrape.sources import make_source
from friendscrape.stores import opened_store

CLEAR = "\r\x1b[K"


class FakeTTY(io.StringIO):
    """A terminal as far as isatty() can tell."""

    def isatty(self) -> bool:
        return True


def test_bar_only_on_a_terminal_and_not_for_json() -> None:
    assert wants_bar(FakeTTY(), "auto")
    assert wants_bar(FakeTTY(), "console")
    assert not wants_bar(FakeTTY(), "json")
    assert not wants_bar(io.StringIO(), "auto")


# Figures a run shows: early, throttled with a learned rate, a 3.6M-user job, finished.
SAMPLES: list[dict[str, object]] = [
    {"done": 0, "remaining": None},
    {"done": 0, "remaining": 9, "users_per_min": 0.0},
    {"done": 25, "remaining": 75, "users_per_min": 5.0, "in_flight": 3},
    {
        "done": 1_234,
        "remaining": 1_766,
        "users_per_min": 412.3,
        "in_flight": 40,
        "paused": {"api.x.com": 42.3, "bsky.social": 3.0},
        "learned_rate": {"api.x.com/0": 12.34, "api.x.com/1": 10.0},
    },
    {
        "done": 1_234_567,
        "remaining": 2_365_433,
        "users_per_min": 1_000.0,
        "in_flight": 200,
        "paused": {"a-rather-long-instance-name.mastodon.example": 900.0},
    },
    {"done": 3_600_000, "remaining": 0, "users_per_min": 1_000.0},
]


@pytest.mark.parametrize("width", [50, 120])
@pytest.mark.parametrize("fields", SAMPLES)
def test_every_line_fits_the_width_with_elapsed_time(width: int, fields: dict[str, object]) -> None:
    for ascii_bar in (False, True):
        line = render(fields, elapsed=3725.2, width=width, ascii_only=ascii_bar)
        assert "\n" not in line
        assert "\r" not in line
        assert disp_len(line) <= width, line
        assert "1:02:05" in line  # elapsed, always


def test_render_shows_done_total_rate_and_eta() -> None:
    line = render(SAMPLES[2], elapsed=42, width=120, ascii_only=True)
    assert line.startswith("25/100  25.0%|")
    assert "elapsed 00:42" in line
    assert "5.0 users/min" in line
    assert "ETA 15m" in line
    assert "3 in flight" in line
    assert "ETA done" in render(
        {"done": 4, "remaining": 0, "users_per_min": 1.0}, elapsed=1, width=80
    )
    assert "ETA <1s" in render(
        {"done": 197, "remaining": 3, "users_per_min": 400.0}, elapsed=1, width=80
    )
    assert "ETA -" in render(SAMPLES[1], elapsed=1, width=80)
    assert render(SAMPLES[0], elapsed=1, width=80).startswith("starting...")


def test_a_pause_and_the_learned_rate_are_shown_and_kept_when_narrow() -> None:
    wide = render(SAMPLES[3], elapsed=5, width=200)
    assert "paused: api.x.com 42s left (+1 more)" in wide
    assert "learned 10.0 req/s (lowest of 2 hosts/tokens)" in wide
    assert "1,234/3,000" in wide
    mid = render(SAMPLES[3], elapsed=5, width=120)
    assert "paused api.x.com 42s" in mid
    assert "learned 10.0/s" in mid
    narrow = render(SAMPLES[3], elapsed=5, width=50)
    assert "paused 42s" in narrow  # what tells a rate-limit wait from a hang
    assert "00:05" in narrow
    # A long host name is cut rather than crowd out the ETA; the pause always stays.
    assert "paused 15m" in render(SAMPLES[4], elapsed=5, width=50)
    assert "ETA 1d 15h  paused 15m" in render(SAMPLES[4], elapsed=5, width=80)
    line = render(SAMPLES[4], elapsed=5, width=120)
    assert "paused a-rather-long-insta… 15m" in line
    assert "ETA 1d 15h" in line
    big = render(SAMPLES[4], elapsed=5, width=50)
    assert big.startswith("1.23M/3.60M  34%|")
    assert "paused 15m" in big


def test_width_comes_from_the_terminal_or_a_fallback() -> None:
    assert terminal_width(FakeTTY()) == FALLBACK_WIDTH  # no file descriptor
    assert LiveLine(FakeTTY(), width=50).width == 50


def test_log_lines_go_above_the_bar() -> None:
    tty = FakeTTY()
    line = LiveLine(tty)
    line.show("BAR 1")
    line.write("event one\n")
    line.show("BAR 2")
    line.finish()
    assert tty.getvalue() == f"{CLEAR}BAR 1{CLEAR}event one\nBAR 1{CLEAR}BAR 2\n"


def test_structlog_console_lines_through_the_bar() -> None:
    tty = FakeTTY()
    line = LiveLine(tty)
    logs.configure(fmt="console", stream=line.as_stream())
    line.show("BAR")
    structlog.get_logger("t").info("run.started", pending=3)
    text = tty.getvalue()
    assert "run.started" in text
    assert text.endswith("\nBAR")
    assert "{" not in text  # people's lines, not JSON


@pytest.mark.parametrize("width", [50, 120])
async def test_live_progress_redraws_one_line_in_place_within_the_width(width: int) -> None:
    tty = FakeTTY()
    line = LiveLine(tty, width=width)
    now = [100.0]
    drawn = asyncio.Event()
    figures = SAMPLES[3]

    def fields() -> dict[str, object]:
        drawn.set()
        return figures

    async with live_progress(line, fields, interval=3600, clock=lambda: now[0]):
        await drawn.wait()
        line.write("a log line longer than fifty columns, as log lines often are, above the bar\n")
        now[0] += 3725.2
        figures = SAMPLES[5]
    out = tty.getvalue()
    assert out.count("\n") == 2  # the log line and the end: no redraw spilled onto a new line
    draws = [chunk.split("\n")[-1] for chunk in out.rstrip("\n").split(CLEAR)[1:]]
    assert len(draws) == 3  # first draw, drawn again below the log line, final
    for bar in draws:
        assert 0 < disp_len(bar) <= width, bar
    assert "00:00" in draws[0]
    assert "paused" in draws[0]
    assert "1:02:05" in draws[-1]
    assert "ETA done" in draws[-1]


async def test_a_partition_run_drives_the_bar(tmp_path: Path) -> None:
    tty = FakeTTY()
    line = LiveLine(tty, width=120)
    async with run_simulator(SimConfig(users=30, latency=0, mean_friends=20)) as sim:
        settings = Settings(
            store=f"sqlite:///{tmp_path / 'fs.db'}",
            source="twitter-mobile",
            base_url=sim.base_url,
            concurrency=5,
            progress_interval=3600,
        )
        async with opened_store(store_config(settings), create=True) as store:
            accounts = [User(a.user_id, a.screen_name) for a in sim.graph.accounts()]
            await store.import_users(accounts)
            await store.plan_partitions(1)
            runner = PartitionRun(
                run_config(settings), store, make_source(source_config(settings)), partition=1
            )
            async with line.around(runner):
                summary = await runner.run()
    total = len(accounts)
    assert summary.users == total
    last = tty.getvalue().rstrip("\n").split(CLEAR)[-1]
    assert f"{total}/{total} 100.0%" in last
    assert "ETA done" in last


def test_the_lines_docs_show_are_what_the_bar_draws() -> None:
    docs = Path(__file__).parents[2] / "docs" / "monitoring.md"
    shown = [
        line.strip()
        for line in docs.read_text(encoding="utf-8").splitlines()
        if line.startswith("    1,234/3,000")
    ]
    fields = {
        "done": 1_234,
        "remaining": 1_766,
        "users_per_min": 412.3,
        "in_flight": 40,
        "paused": {"api.x.com": 42.3},
        "learned_rate": {"api.x.com": 22.3},
    }
    assert shown == [render(fields, elapsed=133, width=w) for w in (150, 88)]
