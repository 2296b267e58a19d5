"""`friendscrape report`: one self-contained HTML page of charts drawn as inline SVG.

Progress over time per partition, users per hour, the friend-count distribution and the
statuses, from the store's per-user figures (``Store.status_rows``). The page loads
nothing: no script, no font, no network, so it opens anywhere and can be mailed.
"""

from __future__ import annotations

import asyncio
import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from friendscrape.config import Settings
from friendscrape.models import Status
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import StatusRow

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


def progress_chart(rows: Sequence[StatusRow]) -> str:
    """Users collected over time, one line per partition."""
    by_part: dict[int, list[float]] = {}
    for r in rows:
        if r.end_at is not None:
            by_part.setdefault(r.partition, []).append(r.end_at.timestamp())
    ends = [t for times in by_part.values() for t in times]
    body: list[str] = []
    if ends:
        t0, t1 = min(ends), max(ends)
        span = (t1 - t0) or 1.0
        top = max(len(v) for v in by_part.values())
        for i, (part, times) in enumerate(sorted(by_part.items())):
            times.sort()
            step = max(len(times) // 400, 1)  # at most ~400 points a line
            pts = [(t, n + 1) for n, t in enumerate(times) if n % step == 0 or n == len(times) - 1]
            coords = " ".join(
                f"{_PAD + (_W - _PAD - 20) * (t - t0) / span:.1f},"
                f"{_H - _PAD - (_H - _PAD - 20) * n / top:.1f}"
                for t, n in pts
            )
            colour = _COLOURS[i % len(_COLOURS)]
            body.append(
                f'<polyline class="series" data-partition="{part}" fill="none" '
                f'stroke="{colour}" stroke-width="2" points="{coords}">'
                f"<title>partition {part}: {len(times):,} users</title></polyline>"
            )
        start = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M")
        body.append(f'<text x="{_PAD + 4}" y="20" font-size="11">from {start} UTC</text>')
    return _frame(
        "progress", "Users collected over time, per partition", "".join(body), "time", "users"
    )


def hourly_chart(rows: Sequence[StatusRow]) -> str:
    """Users finished in each hour."""
    hours: Counter[int] = Counter()
    for r in rows:
        if r.end_at is not None:
            hours[int(r.end_at.timestamp() // 3600)] += 1
    keys = list(range(min(hours), max(hours) + 1)) if hours else []
    labels = [datetime.fromtimestamp(k * 3600, UTC).strftime("%d %H:00") for k in keys]
    return _bars("hourly", "Users per hour", labels, [hours[k] for k in keys], "hour (UTC)")


def friends_chart(rows: Sequence[StatusRow], bins: int = 20) -> str:
    """How many names each collected (ok) user follows."""
    counts = [r.friend_count for r in rows if r.status == Status.OK.value]
    top = max(counts, default=0)
    width = max(-(-(top + 1) // bins), 1)
    hist: Counter[int] = Counter(c // width for c in counts)
    n = (top // width + 1) if counts else 0
    labels = [f"{i * width}-{(i + 1) * width - 1}" for i in range(n)]
    return _bars(
        "friends",
        "Friend-count distribution (ok users)",
        labels,
        [hist[i] for i in range(n)],
        "friends collected",
    )


def status_chart(rows: Sequence[StatusRow]) -> str:
    """Users per status."""
    counts = Counter(r.status for r in rows)
    labels = [*_STATUSES, *sorted(set(counts) - set(_STATUSES))]
    return _bars("statuses", "Users per status", labels, [counts[s] for s in labels], "status")


def render_page(rows: Sequence[StatusRow], *, title: str, generated_at: datetime) -> str:
    """The whole page."""
    charts = [progress_chart(rows), hourly_chart(rows), friends_chart(rows), status_chart(rows)]
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#222}"
        "figure{display:inline-block;margin:1em;vertical-align:top}"
        "figcaption{font-weight:bold;margin-bottom:.3em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(rows):,} users collected; generated {when}.</p>"
        + "".join(charts)
        + "</body></html>\n"
    )


async def write_report(settings: Settings, output: Path) -> int:
    """The `report` command's work: read the store, write the page; returns users drawn."""
    async with opened_store(settings, read_only=True) as store:
        rows = await retried(settings, "status_rows", store.status_rows)
    page = render_page(rows, title="friendscrape progress", generated_at=datetime.now(UTC))
    await asyncio.to_thread(output.write_text, page, encoding="utf-8")
    return len(rows)
