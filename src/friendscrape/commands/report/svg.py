"""Drawing primitives of the report's charts: a plot area with axes, ticks and gridlines.

Inline SVG only (no script, no font, no external file). Every chart has a ``viewBox`` and
is scaled by CSS to its column's width, so it reads at 1280 and at 400 px. Values map
linearly to the plot area; the axes carry values (``1.2k``, ``3.6M``) and time ticks at
round steps (minutes, hours, days), labelled in UTC.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH, HEIGHT = 480, 290
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 14, 54
FONT = 15

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#79706e",
)
"""Ten colours told apart by most readers (Tableau 10): one per partition."""

DASHES = ("", "6 3", "2 3")
"""After ten partitions the colours come back with a dash pattern, so 30 lines differ."""


def style_of(index: int) -> tuple[str, str]:
    """Colour and dash pattern of series ``index`` (0-based)."""
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def compact(value: float) -> str:
    """An axis value: ``950``, ``1.2k``, ``36k``, ``3.6M``."""
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            scaled = value / limit
            text = f"{scaled:.1f}" if abs(scaled) < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    return f"{value:.1f}".removesuffix(".0") if value != int(value) else f"{int(value)}"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round values from 0 to at least ``top``: 0, 2k, 4k ... (``count`` steps or so)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if step >= 1:
        step = max(round(step), 1)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


_TIME_STEPS = (
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
)


def time_step(span: float, count: int = 6) -> int:
    """A round step in seconds giving about ``count`` ticks over ``span`` seconds."""
    return next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])


def time_start(t0: float, t1: float, count: int = 6) -> float:
    """``t0`` moved back to a round step, so the time axis starts on a labelled tick."""
    step = time_step(max(t1 - t0, 1.0), count)
    return math.floor(t0 / step) * step


def time_ticks(t0: float, t1: float, count: int = 6) -> list[tuple[float, str, str]]:
    """``(seconds since the epoch, time label, date label)`` at round UTC steps; the date
    label is set on the first tick and where the day changes ("" elsewhere)."""
    step = time_step(max(t1 - t0, 1.0), count)
    first = math.ceil(t0 / step) * step
    ticks: list[tuple[float, str, str]] = []
    last_day = ""
    t = float(first)
    while t <= t1 + 1e-6:
        moment = datetime.fromtimestamp(t, UTC)
        day = moment.strftime("%d %b")
        clock = moment.strftime("%H:%M") if step < 86400 else day
        ticks.append((t, clock, day if day != last_day and step < 86400 else ""))
        last_day = day
        t += step
    return ticks


@dataclass(frozen=True, slots=True)
class Plot:
    """The plot area of one chart: maps x (seconds or a number) and y values into it."""

    x0: float
    x1: float
    y_top: float

    @property
    def inner_width(self) -> float:
        """Width of the plot area in SVG units."""
        return WIDTH - LEFT - RIGHT

    @property
    def inner_height(self) -> float:
        """Height of the plot area in SVG units."""
        return HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        """SVG x of ``value``."""
        span = (self.x1 - self.x0) or 1.0
        return LEFT + self.inner_width * (value - self.x0) / span

    def y(self, value: float) -> float:
        """SVG y of ``value`` (0 at the bottom)."""
        return TOP + self.inner_height * (1 - value / (self.y_top or 1.0))


def y_axis(plot: Plot, ticks: Sequence[float], title: str) -> str:
    """Gridlines and labelled values up the left side, and the axis title."""
    parts = []
    for v in ticks:
        y = plot.y(v)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e3e3e3"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end" font-size="{FONT - 1}">{compact(v)}</text>'
        )
    mid = TOP + plot.inner_height / 2
    parts.append(
        f'<text class="axis-title" x="16" y="{mid:.1f}" font-size="{FONT - 1}" '
        f'text-anchor="middle" transform="rotate(-90 16 {mid:.1f})">{html.escape(title)}</text>'
    )
    return "".join(parts)


def x_time_axis(plot: Plot) -> str:
    """Time ticks along the bottom (UTC), with the date under the first tick of a day."""
    parts = []
    base = HEIGHT - BOTTOM
    for t, clock, day in time_ticks(plot.x0, plot.x1):
        x = plot.x(t)
        # A label centred on a tick at the right edge would be cut: it ends there instead.
        anchor, at = ("end", WIDTH - 2) if x > WIDTH - RIGHT - 8 else ("middle", x)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 5}" stroke="#555"/>'
            f'<text class="tick" x="{at:.1f}" y="{base + 18}" text-anchor="{anchor}" '
            f'font-size="{FONT - 1}">{clock}</text>'
        )
        if day:
            parts.append(
                f'<text class="tick" x="{at:.1f}" y="{base + 32}" text-anchor="{anchor}" '
                f'font-size="{FONT - 2}" fill="#555">{day}</text>'
            )
    parts.append(
        f'<text class="axis-title" x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" '
        f'font-size="{FONT - 2}" fill="#555">UTC</text>'
    )
    return "".join(parts)


def x_value_axis(plot: Plot, ticks: Sequence[float], title: str) -> str:
    """Numeric ticks along the bottom, and the axis title."""
    parts = []
    base = HEIGHT - BOTTOM
    for v in ticks:
        x = plot.x(v)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 5}" stroke="#555"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 18}" text-anchor="middle" '
            f'font-size="{FONT - 1}">{compact(v)}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{LEFT + plot.inner_width / 2:.1f}" y="{HEIGHT - 8}" '
        f'text-anchor="middle" font-size="{FONT}">{html.escape(title)}</text>'
    )
    return "".join(parts)


def frame(chart_id: str, title: str, body: str) -> str:
    """The ``<svg>`` element around a chart's body, with its two axis lines."""
    base = HEIGHT - BOTTOM
    return (
        f'<svg class="chart" id="{chart_id}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-label="{html.escape(title)}" font-family="sans-serif">{body}'
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" '
        f'stroke="#333"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" '
        f'stroke="#333"/></svg>'
    )


def legend(entries: Sequence[tuple[str, str, str]]) -> str:
    """An HTML legend (it wraps on a narrow screen): ``(label, colour, dash)`` each."""
    items = []
    for label, colour, dash in entries:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            '<li><svg width="26" height="10" viewBox="0 0 26 10" aria-hidden="true">'
            f'<line x1="1" y1="5" x2="25" y2="5" stroke="{colour}" stroke-width="3"{dash_attr}/>'
            f"</svg>{html.escape(label)}</li>"
        )
    return f'<ul class="legend">{"".join(items)}</ul>'


def figure(chart_id: str, title: str, svg: str, *, legend_html: str = "", note: str = "") -> str:
    """A chart with its title, legend and an optional note under it."""
    extra = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (
        f'<figure id="fig-{chart_id}"><figcaption>{html.escape(title)}</figcaption>'
        f"{svg}{legend_html}{extra}</figure>"
    )
