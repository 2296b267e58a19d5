"""The live progress bar: rendering, log lines above it, and a real run driving it."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import structlog

from friendscrape import logs
from friendscrape.commands.progressbar import LiveLine, live_progress, render, wants_bar
from friendscrape.config import Settings
from friendscrape.core.pipeline import PartitionRun, RunConfig
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


def test_render_shows_done_total_rate_and_eta() -> None:
    line = render({"done": 25, "remaining": 75, "users_per_min": 5.0, "in_flight": 3}, width=20)
    assert line.startswith("[#####---------------] 25/100  25.0%")
    assert "5.0 users/min" in line
    assert "ETA 15m" in line
    assert "3 in flight" in line
    assert "ETA done" in render({"done": 4, "remaining": 0, "users_per_min": 1.0})
    assert "ETA <1s" in render({"done": 197, "remaining": 3, "users_per_min": 400.0})
    assert "ETA -" in render({"done": 0, "remaining": 9, "users_per_min": 0.0})
    assert "starting" in render({"done": 0, "remaining": None})


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


async def test_live_progress_draws_while_running_and_at_the_end() -> None:
    tty = FakeTTY()
    line = LiveLine(tty)
    drawn = asyncio.Event()
    figures = {"done": 1, "remaining": 9, "users_per_min": 2.0}

    def fields() -> dict[str, object]:
        drawn.set()
        return figures

    async with live_progress(line, fields, interval=3600):
        await drawn.wait()
        assert "1/10" in tty.getvalue()
        figures = {"done": 10, "remaining": 0, "users_per_min": 3.0}
    assert tty.getvalue().endswith("ETA done\n")


async def test_a_partition_run_drives_the_bar(tmp_path: Path) -> None:
    tty = FakeTTY()
    line = LiveLine(tty)
    async with run_simulator(SimConfig(users=30, latency=0, mean_friends=20)) as sim:
        settings = Settings(
            store=f"sqlite:///{tmp_path / 'fs.db'}",
            base_url=sim.base_url,
            concurrency=5,
            progress_interval=3600,
        )
        async with opened_store(settings, create=True) as store:
            accounts = [User(a.user_id, a.screen_name) for a in sim.graph.accounts()]
            await store.import_users(accounts)
            await store.plan_partitions(1)
            runner = PartitionRun(
                RunConfig.from_settings(settings), store, make_source(settings), partition=1
            )
            async with line.around(runner):
                summary = await runner.run()
    total = len(accounts)
    assert summary.users == total
    last = tty.getvalue().rstrip("\n").split(CLEAR)[-1]
    assert f"{total}/{total} 100.0%" in last
    assert "ETA done" in last
