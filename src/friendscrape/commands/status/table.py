"""The people's form of `friendscrape status`: a line naming the job, a table that fits
the terminal (``--wide``: every column), and the lines under it that say what the
figures are measured over, wrapped at word boundaries to the terminal's width."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from friendscrape.commands.progress.durations import human_duration, span_words, window_label
from friendscrape.commands.progress.figures import (
    STATUSES,
    PartitionStatus,
    StatusReport,
    fleet,
)

WIDTH = 100
"""The width when the terminal's is unknown (output to a file or a pipe, no COLUMNS)."""

MIN_WIDTH = 20
"""Notes are never wrapped narrower than this."""

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
    if p.partition is not None and p.remaining and not p.running:
        return "not running"
    if p.partition is None and p.remaining and not p.running:
        return "none running"
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
    per_day = Column("users/day", lambda p: _num(p.per_day_overall, ",.0f"))
    recent = Column(f"users/day {window}", lambda p: f"{p.per_day_last_hour:,.0f}")
    limited = Column("429s", _rate_limited)
    paused = Column("paused", _paused)
    rate = Column("learned", _learned)
    eta = Column("ETA", _eta)
    if not wide:
        chosen = [part, done, left, share, _status("ok"), _status("failed"), per_day]
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
        per_day,
        recent,
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


def terminal_width() -> int:
    """The terminal's columns (COLUMNS first, as ``shutil`` reads it), else ``WIDTH``."""
    return max(shutil.get_terminal_size((WIDTH, 24)).columns, MIN_WIDTH)


def header(report: StatusReport) -> str:
    """The job in one sentence: platform, store, runs, edges and the results' times."""
    facts = report.facts
    total = report.total
    said = []
    if facts is not None and facts.platform:
        said.append(f"platform {facts.platform}")
    if report.store:
        said.append(f"store {report.store}")
    if facts is not None:
        said.append(f"workers: {facts.workers_running} running, {facts.workers_seen} seen")
    if total.statuses.get("ok"):
        mean = total.avg_friends or 0.0
        said.append(f"{total.friends_ok:,} edges ({mean:,.1f} per ok user)")
    if total.first_start is not None:
        said.append(f"results {_when(total.first_start)} to {_when(total.last_end)} UTC")
    return "; ".join(said)


def _eta_words(seconds: float | None, estimated: bool) -> str:
    text = human_duration(seconds)
    return f"~{text}" if estimated and seconds else text


def legend(report: StatusReport, *, wide: bool, width: int = WIDTH) -> list[str]:
    """What the figures are measured over, wrapped at word boundaries to ``width``."""
    total = report.total
    window = window_label(total.window)
    stamp = total_stamp(report.generated_at)
    said = [
        (
            f"as of {stamp}. users/day: users finished per day over the partition's active "
            "time (while a run was at work on it; hours nobody ran it are not counted); "
            "total: the sum over the partitions running now."
        )
    ]
    if wide:
        said.append(
            f"users/day {window}: users finished per day over the active time in the last {window}."
        )
    span = total.span or total.window
    if wide and span < total.window - 1:
        said.append(
            f"The runs' results are younger than {window}: users/day {window} is over the "
            f"last {span_words(span)} of data."
        )
    said.append(
        "ETA: users left at that rate; not running: no run holds the partition's lease, "
        "so nobody collects it; the total's ETA is the job's users left at the running "
        "partitions' summed rate."
    )
    facts = report.facts
    if facts is not None and total.remaining and facts.workers_needed:
        said.append(
            f"With {facts.workers_needed} workers (one per partition with users left): "
            f"ETA {_eta_words(facts.eta_all_seconds, facts.eta_all_estimated)}."
        )
    if any(p.eta_estimated for p in (*report.partitions, total)) or (
        facts is not None and facts.eta_all_estimated and total.remaining
    ):
        said.append(
            "~: estimated: a partition with no rate of its own at the mean rate of one "
            "worker; users outside the plan as if one more worker collected them."
        )
    said.append(f"429s and paused: in the last {window}, as the runs recorded them.")
    if wide:
        said.append("lat/user: mean seconds one user took from its first request to its result.")
    said.extend(report.notes)
    wrap = max(width, MIN_WIDTH)
    return [
        line
        for text in said
        for line in textwrap.wrap(text, wrap, break_long_words=False, break_on_hyphens=False)
    ]


def total_stamp(moment: datetime) -> str:
    """``2024-05-01 12:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fitted(report: StatusReport, *, wide: bool, width: int) -> list[str]:
    """The table's lines; the default table drops its least needed columns (learned,
    paused, 429s, failed, ok) while it is wider than ``width``."""
    rows = [*report.partitions, report.total]
    cols = columns(report, wide=wide)
    lines = _lines(cols, rows)
    optional = ("learned", "paused", "429s", "failed", "ok")
    for head in () if wide else optional:
        if max(len(line) for line in lines) <= width:
            break
        cols = [c for c in cols if c.head != head]
        lines = _lines(cols, rows)
    return lines


def fleet_lines(report: StatusReport) -> list[str]:
    """``fleet: 100 partitions: 37 done, 10 held, 53 free`` and one line per held one."""
    seen = fleet(report)
    if seen is None:
        return []
    lines = [f"fleet: {seen.summary()}"]
    lines += [f"    partition {p.partition} held by {seen.holder_of(p)}" for p in seen.held]
    return lines


def _wrapped(lines: Sequence[str], width: int) -> list[str]:
    """Each line broken between words to ``width``, its continuation indented."""
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    return out


def render_table(report: StatusReport, *, wide: bool = False, width: int | None = None) -> str:
    """The job's line, one line per partition, a total line, the fleet (partitions done,
    held with their workers, free) and the legend under them, to the terminal's width
    (``width`` when given)."""
    width = terminal_width() if width is None else max(width, MIN_WIDTH)
    head = textwrap.wrap(header(report), width, break_long_words=False, break_on_hyphens=False)
    table = _fitted(report, wide=wide, width=width)
    return "\n".join(
        [
            *head,
            *table,
            *_wrapped(fleet_lines(report), width),
            *legend(report, wide=wide, width=width),
        ]
    )
