"""`friendscrape report`: one self-contained HTML page of charts drawn as inline SVG.

Progress over time per partition, users per hour, the friend-count distribution and the
statuses, from figures the store counts (``partition_summary``, ``finished_counts``,
``friend_histogram``): a few aggregate queries, never one row per user. The page loads
nothing: no script, no font, no network, so it opens anywhere and can be mailed.
"""

from __future__ import annotations

import asyncio
import html
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from friendscrape.config import Settings
from friendscrape.models import Status
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import ReadStore

_W, _H, _PAD = 640, 260, 40
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_STATUSES = tuple(s.value for s in Status)


def _frame(chart_id: str, title: str, body: str, x_label: str, y_label: str) -> str:
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg class="chart" id="{chart_id}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{html.escape(title)}">'
        f'<line class="axis" x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 10}" y2="{_H - _PAD}" '
        f'stroke="#333"/><line class="axis" x1="{_PAD}" y1="10" x2="{_PAD}" '
        f'y2="{_H - _PAD}" stroke="#333"/>'
        f'<text x="{_W // 2}" y="{_H - 8}" text-anchor="middle" font-size="12">'
        f"{html.escape(x_label)}</text>"
        f'<text x="12" y="{_H // 2}" font-size="12" transform="rotate(-90 12 {_H // 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>{body}</svg></figure>'
    )


_MAX_AXIS_LABELS = 8


def _bars(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int], x: str) -> str:
    top = max(values, default=0) or 1
    width = min((_W - _PAD - 20) / max(len(values), 1), 60.0)
    body = []
    every = -(-len(values) // _MAX_AXIS_LABELS)  # label every bar, or every n-th one
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (_H - _PAD - 20) * value / top
        left = _PAD + 5 + i * width
        body.append(
            f'<rect class="bar" x="{left:.1f}" y="{_H - _PAD - h:.1f}" '
            f'width="{max(width - 4, 1):.1f}" height="{h:.1f}" fill="{_COLOURS[0]}">'
            f"<title>{html.escape(label)}: {value:,}</title></rect>"
        )
        if i % max(every, 1) == 0:
            body.append(
                f'<text x="{left + width / 2:.1f}" y="{_H - _PAD + 14}" font-size="10" '
                f'text-anchor="middle">{html.escape(label)}</text>'
            )
    body.append(f'<text x="{_PAD + 4}" y="20" font-size="11">max {top:,}</text>')
    return _frame(chart_id, title, "".join(body), x, "users")


_POINTS = 400
"""Time buckets across the progress chart: its lines never carry more points."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What the page draws, every figure counted in the store (no per-user rows)."""

    progress: Sequence[tuple[int, int, int]]  # (partition, bucket, users), bucket seconds below
    bucket: int
    hourly: Sequence[tuple[int, int, int]]  # (partition, hour since the epoch, users)
    friends_width: int
    friends: Sequence[tuple[int, int]]  # (bin, users)
    statuses: Mapping[str, int]

    @property
    def users(self) -> int:
        """Users collected (each user once)."""
        return sum(self.statuses.values())


def progress_chart(figures: Figures) -> str:
    """Users collected over time, one line per partition (cumulative per time bucket)."""
    by_part: dict[int, list[tuple[float, int]]] = {}
    for part, bucket, users in sorted(figures.progress):
        line = by_part.setdefault(part, [])
        done = (line[-1][1] if line else 0) + users
        line.append(((bucket + 1) * figures.bucket, done))
    ends = [t for line in by_part.values() for t, _ in line]
    body: list[str] = []
    if ends:
        t0, t1 = min(ends), max(ends)
        span = (t1 - t0) or 1.0
        top = max(line[-1][1] for line in by_part.values())
        for i, (part, line) in enumerate(sorted(by_part.items())):
            coords = " ".join(
                f"{_PAD + (_W - _PAD - 20) * (t - t0) / span:.1f},"
                f"{_H - _PAD - (_H - _PAD - 20) * n / top:.1f}"
                for t, n in line
            )
            colour = _COLOURS[i % len(_COLOURS)]
            body.append(
                f'<polyline class="series" data-partition="{part}" fill="none" '
                f'stroke="{colour}" stroke-width="2" points="{coords}">'
                f"<title>partition {part}: {line[-1][1]:,} users</title></polyline>"
            )
        start = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M")
        body.append(f'<text x="{_PAD + 4}" y="20" font-size="11">from {start} UTC</text>')
    return _frame(
        "progress", "Users collected over time, per partition", "".join(body), "time", "users"
    )


def hourly_chart(figures: Figures) -> str:
    """Users finished in each hour."""
    hours: Counter[int] = Counter()
    for _part, hour, users in figures.hourly:
        hours[hour] += users
    keys = list(range(min(hours), max(hours) + 1)) if hours else []
    labels = [datetime.fromtimestamp(k * 3600, UTC).strftime("%d %H:00") for k in keys]
    return _bars("hourly", "Users per hour", labels, [hours[k] for k in keys], "hour (UTC)")


def friends_chart(figures: Figures) -> str:
    """How many names each collected (ok) user follows."""
    hist = dict(figures.friends)
    width = figures.friends_width
    n = max(hist) + 1 if hist else 0
    labels = [f"{i * width}-{(i + 1) * width - 1}" for i in range(n)]
    return _bars(
        "friends",
        "Friend-count distribution (ok users)",
        labels,
        [hist.get(i, 0) for i in range(n)],
        "friends collected",
    )


def status_chart(figures: Figures) -> str:
    """Users per status."""
    counts = figures.statuses
    labels = [*_STATUSES, *sorted(set(counts) - set(_STATUSES))]
    return _bars(
        "statuses", "Users per status", labels, [counts.get(s, 0) for s in labels], "status"
    )


def render_page(figures: Figures, *, title: str, generated_at: datetime) -> str:
    """The whole page."""
    charts = [
        progress_chart(figures),
        hourly_chart(figures),
        friends_chart(figures),
        status_chart(figures),
    ]
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}"
        "figure{display:inline-block;margin:1em;vertical-align:top}"
        "figcaption{font-weight:bold;margin-bottom:.3em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{figures.users:,} users collected; "
        f"generated {when}.</p>" + "".join(charts) + "</body></html>\n"
    )


async def gather_figures(store: ReadStore, *, now: datetime) -> Figures:
    """Read the page's figures from an opened store: a few aggregate queries."""
    summaries = await store.partition_summary(since=now)
    statuses: Counter[str] = Counter()
    for row in summaries:
        statuses[row.status] += row.users
    starts = [r.first_start for r in summaries if r.first_start is not None]
    ends = [r.last_end for r in summaries if r.last_end is not None]
    span = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    bucket = max(math.ceil(span / _POINTS), 1)
    width, friends = await store.friend_histogram(bins=20)
    return Figures(
        progress=await store.finished_counts(bucket=bucket),
        bucket=bucket,
        hourly=await store.finished_counts(bucket=3600),
        friends_width=width,
        friends=friends,
        statuses=dict(statuses),
    )


async def write_report(settings: Settings, output: Path) -> int:
    """The `report` command's work: read the store's aggregates, write the page; returns
    users drawn. Memory does not grow with the users: no per-user row is read."""
    now = datetime.now(UTC)
    async with opened_store(settings, read_only=True) as store:
        figures = await retried(settings, "report", lambda: gather_figures(store, now=now))
    page = render_page(figures, title="friendscrape progress", generated_at=now)
    await asyncio.to_thread(output.write_text, page, encoding="utf-8")
    return figures.users
