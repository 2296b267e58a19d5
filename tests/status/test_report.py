"""`report`: the page a researcher sends on, read from the store's aggregates.

The page is checked as text (headline, tables, legends, axes), as a command run in a new
process (stdout without --output, a file with it), in headless Chromium at 1280 and 400
px wide (the headline, legend and tables in the rendered DOM; screenshots that are not
blank, show every partition's colour and do not overflow the width), and on each store.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pngread import read_png
from report_data import PARTITIONS, T0, Expected, fill

from friendscrape.commands.progress.figures import build_report
from friendscrape.commands.report.charts import progress_chart
from friendscrape.commands.report.command import Figures, build_page
from friendscrape.commands.report.svg import PALETTE
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.configparts import store_config
from friendscrape.models import Partition, User
from friendscrape.stores import opened_store
from friendscrape.stores.base import ListCounts


async def _filled(url: str, *, with_samples: bool = True) -> None:
    async with opened_store(store_config(Settings(store=url)), create=True) as store:
        await fill(store, with_samples=with_samples)


@pytest.fixture(scope="module")
def job_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('job') / 'fs.db'}"
    asyncio.run(_filled(url))
    return url


@pytest.fixture(scope="module")
def page(job_url: str) -> str:
    text, _ = asyncio.run(build_page(Settings(store=job_url)))
    return text


def _section(page: str, element_id: str) -> str:
    """The markup of the table or chart with that id (up to its closing tag)."""
    start = page.index(f'id="{element_id}"')
    tag = page.rfind("<", 0, start)
    name = page[tag + 1 : page.index(" ", tag)]
    return page[start : page.index(f"</{name}>", start)]


def _rows(table: str) -> list[list[str]]:
    """Cells of each body row, text only."""
    body = table[table.index("<tbody>") :]
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


def test_page_is_self_contained_and_script_free(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=", page)
    assert "url(" not in page
    assert "@import" not in page
    for chart in ("progress", "throughput", "friends", "rate-limited", "paused"):
        svg = _section(page, chart)
        assert 'viewBox="0 0 ' in svg, chart
    assert "svg.chart{display:block;width:100%;height:auto" in page


def test_headline_says_how_many_of_how_many_the_eta_and_the_cost_so_far(page: str) -> None:
    headline = _section(page, "headline")
    assert re.fullmatch(
        r'id="headline">195 of 200 users collected \(97\.5%\) from twitter-mobile, 2,458 edges '
        r"\(13\.0 friends per ok user\), no partition is running \(ETA none\); with 1 workers "
        r"\(one per partition with users left\) ETA \S+( \S+)? "
        r"\(\d\d \w\w\w \d\d:\d\d UTC\), cost so far about \$0\.64 \(estimate\)",
        headline,
    ), headline
    # 10 workers from their first start to their last result: 9 x 114 m 20 s + 84 m 20 s.
    assert "18.6 worker-hours of 10 workers at standard-1x" in page


def test_partition_table_is_the_monitoring_query(page: str) -> None:
    rows = _rows(_section(page, "partitions"))
    assert len(rows) == PARTITIONS + 1
    assert rows[0][:7] == ["1", "20", "20", "20", "0", "0", "100.0"]
    assert rows[0][8] == "done"
    assert rows[9][:7] == ["10", "20", "15", "14", "1", "5", "75.0"]
    assert rows[9][7] != "-"  # a rate
    assert rows[9][8] not in ("-", "done")  # and an ETA
    assert rows[-1][:7] == ["total", "200", "195", "189", "3", "5", "97.5"]


def test_ten_partitions_are_ten_colours_with_a_legend(page: str) -> None:
    chart = _section(page, "fig-progress")
    strokes = re.findall(
        r'class="series" data-partition="(\d+)" fill="none" stroke="(#\w+)"', chart
    )
    assert [int(p) for p, _ in strokes] == list(range(1, PARTITIONS + 1))
    assert len({colour for _, colour in strokes}) == PARTITIONS
    legend = re.findall(r"</svg>(partition \d+ \(\d+\))</li>", chart)
    assert legend[0] == "partition 1 (20)"
    assert legend[-1] == "partition 10 (15)"
    assert len(legend) == PARTITIONS


def test_axes_carry_values_and_time_ticks(page: str) -> None:
    chart = _section(page, "progress")
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart)
    assert {"0", "10", "20"} <= set(ticks)  # users, up to a partition's 20
    assert "08:00" in ticks  # time ticks, with the date under the first
    assert "01 May" in ticks
    assert "users collected" in chart
    bars = _section(page, "throughput")
    assert bars.count('class="bar"') >= 10  # two hours in intervals of minutes, not one bar


def test_statuses_read_at_97_percent_ok(page: str) -> None:
    rows = {r[0]: r[1:] for r in _rows(_section(page, "statuses"))}
    assert rows["ok"] == ["189", "96.9%"]
    assert rows["suspended"] == ["1", "0.51%"]
    assert rows["failed"] == ["3", "1.5%"]
    assert rows["deactivated"] == ["0", "0%"]
    assert rows["all"] == ["195", "100.0%"]


def test_truncated_incomplete_and_short_lists_and_failures_by_kind(page: str) -> None:
    want = Expected()
    lists = {r[0]: r[1] for r in _rows(_section(page, "lists"))}
    assert lists == {
        "ok lists": str(want.ok),
        "truncated": str(want.truncated),
        "incomplete": str(want.incomplete),
        "short": str(want.short),
    }
    failures = _rows(_section(page, "failures"))
    assert failures == [["timeout", "2", "66.7%"], ["http_404", "1", "33.3%"]]


def test_pauses_over_time_come_from_the_run_samples(page: str) -> None:
    limited = _section(page, "rate-limited")
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', limited)]
    assert len([h for h in heights if h > 0]) == 2  # the two samples of the second hour
    assert "<title>55</title>" in limited  # 1 + 2 + ... + 10 partitions' 429s per sample
    paused = _section(page, "paused")
    assert "<title>1,650</title>" in paused  # 30 s x (1 + ... + 10)
    assert "no pauses recorded" not in page


def test_a_store_without_samples_says_no_pauses_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fs.db'}"
    asyncio.run(_filled(url, with_samples=False))
    text, _ = asyncio.run(build_page(Settings(store=url)))
    assert "no pauses recorded" in _section(text, "pauses")
    assert 'id="rate-limited"' not in text


# -- the command, as users run it --------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", *args],
        cwd=cwd,
        env=environ_without_configuration(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_output_the_page_goes_to_stdout_and_nothing_else(
    job_url: str, tmp_path: Path
) -> None:
    ran = _cli("report", "--store", job_url, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("<!DOCTYPE html>")
    assert ran.stdout.rstrip().endswith("</html>")
    assert "195 of 200 users collected" in ran.stdout
    assert list(tmp_path.iterdir()) == []  # no report.html left behind


def test_with_output_the_page_goes_to_the_file_and_stdout_stays_empty(
    job_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "progress.html"
    ran = _cli("report", "--store", job_url, "--output", str(out), "--tier", "basic", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""
    assert f"wrote {out} (195 users collected)" in ran.stderr
    # Basic is $7 a month: 18.6 worker-hours x 7 / 720.
    assert "cost so far about $0.18 (estimate)" in out.read_text(encoding="utf-8")


def test_an_unknown_tier_is_one_line(job_url: str, tmp_path: Path) -> None:
    ran = _cli("report", "--store", job_url, "--tier", "huge-9x", cwd=tmp_path)
    assert ran.returncode != 0
    assert ran.stdout == ""
    errors = [ln for ln in ran.stderr.splitlines() if ln.strip()]
    assert errors == [
        (
            "friendscrape: error: --tier 'huge-9x' is not in the tiers table; choose one of "
            "eco, basic, standard-1x, standard-2x, performance-m, performance-l"
        )
    ], ran.stderr


# -- headless Chromium ----------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must have it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (make browser); required under CI")


@pytest.fixture
def browser(tmp_path: Path) -> list[str]:
    profile = tmp_path / "profile"
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


@pytest.fixture
def page_file(page: str, tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [1280, 400])
def test_headline_legend_and_tables_render_in_chromium(
    browser: list[str], page_file: Path, width: int
) -> None:
    dom = subprocess.run(
        [*browser, f"--window-size={width},2000", "--dump-dom", page_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "195 of 200 users collected (97.5%)" in dom
    assert dom.count('class="chart"') == 5
    assert dom.count('<ul class="legend">') == 5
    assert "partition 10 (15)" in dom
    for table in ("partitions", "statuses", "lists", "failures"):
        assert f'<table id="{table}">' in dom


@pytest.mark.parametrize(("width", "height"), [(1280, 1600), (400, 2400)])
def test_screenshots_show_every_colour_and_fit_the_width(
    browser: list[str], page_file: Path, tmp_path: Path, width: int, height: int
) -> None:
    shot = tmp_path / f"report-{width}.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", f"--window-size={width},{height}", page_file.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = read_png(shot)
    assert (image.width, image.height) == (width, height)
    # Nothing runs past the right edge: the body's padding stays blank.
    assert image.last_inked_column() < width - 4
    # The headline and the partition table are inked at the top...
    assert image.ink(0, 0, width, 120) > 2_000
    # ... and each partition's colour is drawn (its line and its legend swatch).
    colours = {bytes.fromhex(c[1:]) for c in PALETTE}
    seen: set[bytes] = set()
    for row in image.rows:
        for x in range(0, width * image.channels, image.channels):
            px = row[x : x + 3]
            if px in colours:
                seen.add(px)
    assert seen == colours


# -- on each store ------------------------------------------------------------------------


async def test_the_page_reads_the_same_from_every_store(store_settings: Settings) -> None:
    async with opened_store(store_config(store_settings), create=True) as store:
        want = await fill(store)
    text, figures = await build_page(store_settings)
    assert figures.collected == want.collected
    assert "195 of 200 users collected (97.5%)" in _section(text, "headline")
    assert _rows(_section(text, "partitions"))[-1][:7] == [
        "total",
        "200",
        "195",
        "189",
        "3",
        "5",
        "97.5",
    ]
    lists = {r[0]: r[1] for r in _rows(_section(text, "lists"))}
    assert lists["incomplete"] == str(want.incomplete)
    assert _rows(_section(text, "failures"))[0] == ["timeout", "2", "66.7%"]
    assert "<title>1,650</title>" in _section(text, "paused")


# -- edges ----------------------------------------------------------------------------


def test_past_thirty_partitions_one_line_draws_the_whole_job() -> None:
    plan = [Partition(n, 10, str(n), str(n)) for n in range(1, 32)]
    figures = Figures(
        status=build_report(plan, [], now=T0),
        progress=[(n, 100 + n % 3, 2) for n in range(1, 32)],  # buckets out of order
        progress_bucket=60,
        bars=[],
        bar_interval=60,
        friends_width=1,
        friends=[],
        lists=ListCounts(0, 0, 0, 0),
        failures=[],
        samples=[],
        cost=None,
    )
    chart = progress_chart(figures)
    assert chart.count('class="series"') == 1
    assert "<title>all partitions: 62 users</title>" in chart
    points = re.search(r'points="([^"]+)"', chart)
    assert points is not None
    xs = [float(p.split(",")[0]) for p in points.group(1).split()]
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert xs == sorted(xs)  # one line through time
    assert ys == sorted(ys, reverse=True)  # that only climbs (SVG y grows downwards)
    assert "31 partitions: one line for all" in chart


def test_a_job_with_nothing_collected_yet_still_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fs.db'}"

    async def plan_only() -> None:
        async with opened_store(store_config(Settings(store=url)), create=True) as store:
            await store.import_users([User(str(i), f"u{i}") for i in range(1, 51)])
            await store.plan_partitions(5)

    asyncio.run(plan_only())
    text, figures = asyncio.run(build_page(Settings(store=url)))
    assert figures.collected == 0
    assert _section(text, "headline") == (
        'id="headline">0 of 50 users collected (0.0%), 0 edges (- friends per ok user), '
        "no partition is running (ETA none), cost so far about $0.00 (estimate)"
    )
    assert "no user collected yet" in _section(text, "fig-progress")
    assert "no failed user" in text
    assert "no pauses recorded" in text
