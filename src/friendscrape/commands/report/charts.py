"""The report's charts: progress per partition, users finished per interval, friend
counts, and rate-limit pauses, each an SVG figure with axes, values and a legend."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence

from friendscrape.commands.report.figures import Figures
from friendscrape.commands.report.svg import (
    PALETTE,
    Plot,
    figure,
    frame,
    legend,
    nice_ticks,
    style_of,
    time_start,
    x_time_axis,
    x_value_axis,
    y_axis,
)

MAX_LINES = 30
"""Partitions drawn as lines at most; past that one line shows the whole job."""


def interval_words(seconds: int) -> str:
    """``minute``, ``5 minutes``, ``hour``, ``3 hours``, ``day``, ``7 days``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"


def _empty(chart_id: str, title: str, message: str) -> str:
    svg = frame(
        chart_id,
        title,
        f'<text x="50%" y="45%" text-anchor="middle" font-size="14" fill="#666">'
        f"{html.escape(message)}</text>",
    )
    return figure(chart_id, title, svg, note=message)


def _line_label(part: int) -> str:
    if part == -1:
        return "all partitions"
    return "outside the plan" if part == 0 else f"partition {part}"


def progress_chart(figures: Figures) -> str:
    """Users collected over time, one cumulative line per partition (colour + dash)."""
    title = "Users collected over time, per partition"
    bucket = figures.progress_bucket
    merged = len(figures.status.partitions) > MAX_LINES
    per: dict[int, Counter[int]] = {}
    for part, number, users in figures.progress:
        per.setdefault(-1 if merged else part, Counter())[number] += users
    lines: dict[int, list[tuple[float, int]]] = {}
    for key, counts in per.items():
        done = 0
        line = [(float(min(counts) * bucket), 0)]
        for number in sorted(counts):
            done += counts[number]
            line.append(((number + 1) * bucket, done))
        lines[key] = line
    if not lines:
        return _empty("progress", title, "no user collected yet")
    t1 = max(line[-1][0] for line in lines.values())
    t0 = time_start(min(line[0][0] for line in lines.values()), t1)
    top_ticks = nice_ticks(max(line[-1][1] for line in lines.values()))
    plot = Plot(t0, t1, top_ticks[-1])
    body = [y_axis(plot, top_ticks, "users collected"), x_time_axis(plot)]
    entries = []
    for i, (part, line) in enumerate(sorted(lines.items())):
        colour, dash = style_of(i)
        label = _line_label(part)
        coords = " ".join(f"{plot.x(t):.1f},{plot.y(n):.1f}" for t, n in line)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<polyline class="series" data-partition="{part}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash_attr} points="{coords}">'
            f"<title>{label}: {line[-1][1]:,} users</title></polyline>"
        )
        entries.append((f"{label} ({line[-1][1]:,})", colour, dash))
    note = ""
    if len(figures.status.partitions) > MAX_LINES:
        note = f"{len(figures.status.partitions)} partitions: one line for all (see the table)"
    return figure(
        "progress", title, frame("progress", title, "".join(body)),
        legend_html=legend(entries), note=note,
    )  # fmt: skip


def _time_bars(
    chart_id: str,
    title: str,
    values: Sequence[tuple[int, float]],
    interval: int,
    *,
    y_title: str,
    label: str,
    colour: str,
    note: str = "",
) -> str:
    """Bars over time: ``values`` are (interval number, value), each bar one interval."""
    first = min(n for n, _ in values)
    last = max(n for n, _ in values)
    t1 = (last + 1) * interval
    t0 = time_start(first * interval, t1)
    ticks = nice_ticks(max(v for _, v in values))
    plot = Plot(t0, t1, ticks[-1])
    width = plot.inner_width * interval / max(t1 - t0, 1)
    gap = min(width * 0.15, 3.0)
    body = [y_axis(plot, ticks, y_title), x_time_axis(plot)]
    for n, value in values:
        x = plot.x(n * interval) + gap / 2
        y = plot.y(value)
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(width - gap, 1):.1f}" '
            f'height="{plot.y(0) - y:.1f}" fill="{colour}"><title>{value:,.0f}</title></rect>'
        )
    return figure(
        chart_id, title, frame(chart_id, title, "".join(body)),
        legend_html=legend([(label, colour, "")]), note=note,
    )  # fmt: skip


def throughput_chart(figures: Figures) -> str:
    """Users finished per interval (an hour, or what keeps the bars few), all partitions."""
    words = interval_words(figures.bar_interval)
    title = f"Users finished per {words}"
    per: Counter[int] = Counter()
    for _part, number, users in figures.bars:
        per[number] += users
    if not per:
        return _empty("throughput", title, "no user collected yet")
    values = [(n, float(per[n])) for n in range(min(per), max(per) + 1)]
    return _time_bars(
        "throughput",
        title,
        values,
        figures.bar_interval,
        y_title=f"users per {words}",
        label="users finished, any status",
        colour=PALETTE[0],
    )


def friends_chart(figures: Figures) -> str:
    """How many names each ok user follows: a histogram of equal bins from 0."""
    title = "Friends collected per ok user"
    hist = dict(figures.friends)
    if not hist:
        return _empty("friends", title, "no ok user yet")
    width = figures.friends_width
    bins = max(hist) + 1
    top = max(hist.values())
    yt = nice_ticks(top)
    plot = Plot(0, bins * width, yt[-1])
    xt = [v for v in nice_ticks(bins * width, 6) if v <= bins * width]
    body = [y_axis(plot, yt, "ok users"), x_value_axis(plot, xt, "friends collected")]
    for i in range(bins):
        value = hist.get(i, 0)
        x = plot.x(i * width)
        w = plot.x((i + 1) * width) - x
        y = plot.y(value)
        body.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{max(w - 2, 1):.1f}" '
            f'height="{plot.y(0) - y:.1f}" fill="{PALETTE[4]}"><title>{i * width}-'
            f"{(i + 1) * width - 1} friends: {value:,} users</title></rect>"
        )
    return figure(
        "friends", title, frame("friends", title, "".join(body)),
        legend_html=legend([(_bin_words(width), PALETTE[4], "")]),
    )  # fmt: skip


def _bin_words(width: int) -> str:
    """What one bar counts: ``ok users per bin of 101 friends (0-100, 101-201 ...)``."""
    if width == 1:
        return "ok users with each number of friends"
    return (
        f"ok users per bin of {width:,} friends (0-{width - 1:,}, {width:,}-{2 * width - 1:,} ...)"
    )


def pauses_charts(figures: Figures) -> str:
    """Rate limiting over time from the runs' samples: 429 answers and seconds paused."""
    interval = figures.bar_interval
    words = interval_words(interval)
    limited: Counter[int] = Counter()
    paused: Counter[int] = Counter()
    for s in figures.samples:
        n = int(s.start.timestamp()) // interval
        limited[n] += s.rate_limited
        paused[n] += round(s.paused_seconds)
    title_429 = f"HTTP 429 answers per {words}"
    title_paused = f"Seconds hosts were paused per {words}, all workers"
    if not sum(limited.values()) and not sum(paused.values()):
        why = (
            "no pauses recorded"
            if figures.samples
            else "no pauses recorded (no run has recorded samples in this store yet)"
        )
        return f'<p class="empty" id="pauses">{html.escape(why)}</p>'
    keys = range(min(limited), max(limited) + 1)
    return _time_bars(
        "rate-limited", title_429, [(n, float(limited[n])) for n in keys], interval,
        y_title=f"429s per {words}", label="answers 429 (too many requests)",
        colour=PALETTE[2],
    ) + _time_bars(
        "paused", title_paused, [(n, float(paused[n])) for n in keys], interval,
        y_title="seconds paused", label="seconds paused (429s, spent quotas)",
        colour=PALETTE[1],
    )  # fmt: skip
