"""The people's form of `friendscrape status`: a table that fits 100 columns (``--wide``:
every column), and the lines under it that say what the figures are measured over."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from friendscrape.commands.progress.durations import human_duration, span_words, window_label
from friendscrape.commands.progress.figures import STATUSES, PartitionStatus, StatusReport

WIDTH = 100
"""The default table's width at most, notes included."""

_SHORT = {
    "ok": "ok",
    "protected": "prot",
    "not_found": "nfound",
    "suspended": "susp",
    "deactivated": "deact",
    "invalid": "inval",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its heading and how a row's cell reads."""

    head: str
    cell: Callable[[PartitionStatus], str]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%m-%d %H:%M")


def _seconds(value: float) -> str:
    """Paused time: ``0s``, ``42s``, ``12m``, ``1h 05m``."""
    return "0s" if value < 0.5 else human_duration(value)


def _eta(p: PartitionStatus) -> str:
    text = human_duration(p.eta_seconds)
    return f"~{text}" if p.eta_estimated and p.eta_seconds else text


def _status(name: str) -> Column:
    return Column(_SHORT[name], lambda p: str(p.statuses.get(name, 0)))


def _part(p: PartitionStatus) -> str:
    return "total" if p.partition is None else str(p.partition)


def _rate_limited(p: PartitionStatus) -> str:
    return "-" if p.run is None else str(p.run.rate_limited)


def _paused(p: PartitionStatus) -> str:
    return "-" if p.run is None else _seconds(p.run.paused_seconds)


def _learned(p: PartitionStatus) -> str:
    rate = p.run.learned_rate if p.run is not None else None
    return "-" if rate is None else f"{rate:.1f}/s"


def columns(report: StatusReport, *, wide: bool) -> list[Column]:
    """The columns shown: a few for 100 columns, or all of them (``wide``)."""
    window = window_label(report.total.window)
    learned = any(
        p.run is not None and p.run.learned_rate is not None
        for p in (*report.partitions, report.total)
    )
    part = Column("part", _part)
    users = Column("users", lambda p: str(p.users))
    done = Column("done", lambda p: str(p.collected))
    left = Column("left", lambda p: str(p.remaining))
    share = Column("%", lambda p: f"{p.percent_done:.1f}")
    recent = Column(f"/day {window}", lambda p: f"{p.per_day_last_hour:,.0f}")
    limited = Column("429s", _rate_limited)
    paused = Column("paused", _paused)
    rate = Column("learned", _learned)
    eta = Column("ETA", _eta)
    if not wide:
        chosen = [part, done, left, share, _status("ok"), _status("failed"), recent]
        return [*chosen, limited, paused, *([rate] if learned else []), eta]
    return [
        part,
        users,
        done,
        left,
        share,
        *(_status(s) for s in STATUSES),
        Column("friends", lambda p: _num(p.avg_friends, ".1f")),
        Column("lat/user", lambda p: _num(p.avg_seconds, ".2f")),
        recent,
        Column("/day all", lambda p: _num(p.per_day_overall, ",.0f")),
        limited,
        paused,
        rate,
        Column("first start", lambda p: _when(p.first_start)),
        Column("last end", lambda p: _when(p.last_end)),
        eta,
    ]


def _lines(cols: Sequence[Column], rows: Sequence[PartitionStatus]) -> list[str]:
    cells = [[c.cell(p) for c in cols] for p in rows]
    widths = [max(len(c.head), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.head.rjust(w) for c, w in zip(cols, widths, strict=True))]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return out


def legend(report: StatusReport, *, wide: bool) -> list[str]:
    """What the figures are measured over, in lines of at most WIDTH characters."""
    total = report.total
    window = window_label(total.window)
    stamp = total_stamp(report.generated_at)
    said = [f"as of {stamp}; /day {window}: users finished in the last {window}, per day."]
    span = total.span or total.window
    if span < total.window - 1:
        said.append(
            f"The runs' results are younger than {window}: /day {window} is over the last "
            f"{span_words(span)} of data."
        )
    said.append("ETA: users left at that rate, else at the overall rate.")
    if any(p.eta_estimated for p in (*report.partitions, total)):
        said.append(
            "~: estimated: a partition with no rate of its own (not started) at the running "
            "partitions' mean rate; users outside the plan at the whole job's rate."
        )
    said.append(f"429s and paused: in the last {window}, as the runs recorded them.")
    if wide:
        said.append("lat/user: mean seconds one user took from its first request to its result.")
    said.extend(report.notes)
    return [line for text in said for line in textwrap.wrap(text, WIDTH)]


def total_stamp(moment: datetime) -> str:
    """``2024-05-01 12:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_table(report: StatusReport, *, wide: bool = False) -> str:
    """One line per partition, a total line, and the legend under them."""
    rows = [*report.partitions, report.total]
    return "\n".join([*_lines(columns(report, wide=wide), rows), *legend(report, wide=wide)])
