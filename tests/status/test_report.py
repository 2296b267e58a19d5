"""`report`: a self-contained page whose SVG charts render in a real headless browser."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from friendscrape import cli
from friendscrape.config import Settings
from friendscrape.models import FriendList, Status, User
from friendscrape.stores import opened_store

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
STATUS_CYCLE = (Status.OK, Status.OK, Status.OK, Status.PROTECTED, Status.SUSPENDED)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must have it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); required under CI")


async def _fill(store_url: str) -> None:
    settings = Settings(store=store_url)
    async with opened_store(settings, create=True) as store:
        await store.import_users([User(str(i), f"user{i:04d}") for i in range(1, 61)])
        await store.plan_partitions(3)
        results = []
        for i in range(1, 61):
            start = T0 + timedelta(minutes=5 * i)
            status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
            names = tuple(f"f{j}" for j in range(i * 3)) if status is Status.OK else ()
            results.append(
                FriendList(
                    str(i),
                    f"user{i:04d}",
                    status,
                    "twitter-mobile",
                    0,
                    start,
                    start + timedelta(seconds=4),
                    friend_names=names,
                )
            )
        await store.save(results)


@pytest.fixture
def report_page(tmp_path: Path) -> Path:
    store = f"sqlite:///{tmp_path / 'fs.db'}"
    asyncio.run(_fill(store))
    out = tmp_path / "report.html"
    assert cli.main(["report", "--store", store, "--output", str(out)]) == 0
    return out


def test_page_is_self_contained(report_page: Path) -> None:
    page = report_page.read_text()
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"https?:", page)
    for chart in ("progress", "hourly", "friends", "statuses"):
        assert f'id="{chart}"' in page


def test_charts_render_in_headless_chromium(report_page: Path, tmp_path: Path) -> None:
    browser = _chromium()
    profile = tmp_path / "profile"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", report_page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert dom.count('class="chart"') == 4
    progress = dom[dom.index('id="progress"') : dom.index('id="hourly"')]
    assert progress.count('class="series"') == 3  # one line per partition
    hourly = dom[dom.index('id="hourly"') : dom.index('id="friends"')]
    assert hourly.count('class="bar"') == 6  # 60 users over five hours, in six clock hours
    statuses = dom[dom.index('id="statuses"') :]
    assert ">suspended: 12<" in statuses
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1400,2200", report_page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes
