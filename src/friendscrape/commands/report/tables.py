"""The report's headline and tables: per partition, per status, lists, failures.

Tables carry the numbers a chart cannot show at a glance: a status at 0.3% next to
97% ``ok`` is a row with its count and share, never a bar one pixel high.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from friendscrape.commands.progress.durations import human_duration
from friendscrape.commands.progress.figures import STATUSES, PartitionStatus, fleet
from friendscrape.commands.report.figures import Cost, Figures


def _pct(part: int, whole: int) -> str:
    """A share that stays readable when small: ``97.1%``, ``0.42%``, ``<0.01%``."""
    if whole <= 0:
        return "-"
    share = 100 * part / whole
    if share == 0:
        return "0%"
    if share < 0.01:
        return "<0.01%"
    return f"{share:.2f}%" if share < 1 else f"{share:.1f}%"


def _eta_words(seconds: float | None, now: datetime) -> str:
    if seconds is None:
        return "ETA unknown (no rate measured yet)"
    if seconds <= 0:
        return "done"
    at = (now + timedelta(seconds=seconds)).astimezone(UTC).strftime("%d %b %H:%M UTC")
    return f"ETA {human_duration(seconds)} ({at})"


def cost_words(cost: Cost | None) -> str:
    """``cost so far about $12.40 (estimate)``, or "" when no tier is priced."""
    if cost is None:
        return ""
    return f"cost so far about ${cost.usd:,.2f} (estimate)"


def _job_eta(figures: Figures) -> str:
    """The job's ETA at the running workers' rate, and with a worker per partition left."""
    report = figures.status
    total = report.total
    facts = report.facts
    now = report.generated_at
    if total.remaining and not total.running:
        said = "no partition is running (ETA none)"
    else:
        said = _eta_words(total.eta_seconds, now)
        if total.remaining and facts is not None:
            said += f" with the {facts.workers_running} running"
    if total.remaining and facts is not None and facts.eta_all_seconds is not None:
        mark = "~" if facts.eta_all_estimated else ""
        said += (
            f"; with {facts.workers_needed} workers (one per partition with users left) "
            f"{mark}{_eta_words(facts.eta_all_seconds, now)}"
        )
    return said


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def job_facts(figures: Figures) -> str:
    """What the figures count and where from: platform, store, results' times, workers,
    edges; a banner when the rates come from a local simulator."""
    report = figures.status
    total = report.total
    facts = report.facts
    items = [
        ("platform", (facts.platform if facts else "") or "-"),
        ("store", report.store or "-"),
        ("first result", _when(total.first_start)),
        ("last result", _when(total.last_end)),
        ("workers seen", f"{facts.workers_seen:,} runs" if facts else "-"),
        ("running now", f"{facts.workers_running:,}" if facts else "-"),
        ("edges collected", f"{total.friends_ok:,}"),
        ("mean friends per ok user", _num(total.avg_friends)),
    ]
    cells = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    out = f'<dl class="facts" id="facts">{cells}</dl>'
    if facts is not None and facts.simulated:
        out = (
            '<p class="banner" id="simulated" role="note"><strong>Simulated:</strong> '
            "these rates were measured against a local simulator, not a real platform; "
            "they say nothing of how fast a real upstream answers.</p>" + out
        )
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def headline(figures: Figures) -> str:
    """N of M users (x%), edges, ETA, cost so far: the sentence a reader reads first."""
    total = figures.status.total
    facts = figures.status.facts
    platform = f" from {facts.platform}" if facts is not None and facts.platform else ""
    parts = [
        f"{total.collected:,} of {total.users:,} users collected ({total.percent_done:.1f}%)"
        + platform,
        f"{total.friends_ok:,} edges ({_num(total.avg_friends)} friends per ok user)",
        _job_eta(figures),
    ]
    if figures.cost is not None:
        parts.append(cost_words(figures.cost))
    return f'<p class="headline" id="headline">{html.escape(", ".join(parts))}</p>'


def cost_note(cost: Cost | None) -> str:
    """How the cost was estimated, under the headline."""
    if cost is None:
        return ""
    if cost.pool:
        how = f"{cost.tier} is billed per 30 days started from a shared pool of hours"
    else:
        how = (
            f"{cost.worker_hours:,.1f} worker-hours of {cost.workers} workers at "
            f"{cost.tier}'s list price, ${cost.usd_per_hour:.4f} an hour"
        )
    return (
        f'<p class="note">Cost is an estimate: {html.escape(how)}; a worker counts from '
        "its partition's first start to its last result (to now while it collects); "
        "idle hours and restarts are not seen. Prices from the tiers table "
        "(<code>--tiers</code>), as <code>friendscrape estimate</code> uses.</p>"
    )


def _row(
    cells: Sequence[str], *, head: bool = False, cls: str = "", narrow: Sequence[int] = ()
) -> str:
    """A table row; cells at the ``narrow`` positions are hidden on a phone's width."""
    tag = "th" if head else "td"
    attr = f' class="{cls}"' if cls else ""
    out = [
        f'<{tag} class="wide">{c}</{tag}>' if i in narrow else f"<{tag}>{c}</{tag}>"
        for i, c in enumerate(cells)
    ]
    return f"<tr{attr}>{''.join(out)}</tr>"


def _table(
    table_id: str,
    caption: str,
    head: Sequence[str],
    rows: Sequence[str],
    *,
    narrow: Sequence[int] = (),
) -> str:
    return (
        f'<div class="scroll"><table id="{table_id}"><caption>{html.escape(caption)}</caption>'
        f"<thead>{_row(head, head=True, narrow=narrow)}</thead><tbody>{''.join(rows)}</tbody>"
        "</table></div>"
    )


def _eta_cell(p: PartitionStatus) -> str:
    if p.remaining and not p.running:
        return "not running" if p.partition is not None else "none running"
    text = human_duration(p.eta_seconds)
    return f"~{text}" if p.eta_estimated and p.eta_seconds else text


def _partition_cells(p: PartitionStatus) -> list[str]:
    rate = p.rate
    return [
        "total" if p.partition is None else str(p.partition),
        f"{p.users:,}",
        f"{p.collected:,}",
        f"{p.statuses.get('ok', 0):,}",
        f"{p.statuses.get('failed', 0):,}",
        f"{p.remaining:,}",
        f"{p.percent_done:.1f}",
        "-" if not rate else f"{rate:,.0f}",
        _eta_cell(p),
    ]


def partition_table(figures: Figures) -> str:
    """The monitoring query as a table: one row per partition and the total."""
    head = ["partition", "users", "done", "ok", "failed", "pending", "%", "users per day", "ETA"]
    report = figures.status
    narrow = (1, 3, 4)  # users (done + pending), ok and failed: hidden on a phone
    rows = [_row(_partition_cells(p), narrow=narrow) for p in report.partitions]
    rows.append(_row(_partition_cells(report.total), cls="total", narrow=narrow))
    note = (
        '<p class="note">users per day: users finished per day over the partition\'s '
        "active time (while a run was at work on it; hours nobody ran it are not "
        "counted); total: the sum over the partitions running now. ETA: pending users at "
        "that rate; not running: no run holds the partition's lease, so nobody collects "
        "it; the total's ETA is the job's pending users at the running partitions' summed "
        "rate (~: a running partition with no rate of its own yet at one worker's mean).</p>"
    )
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in report.notes)
    table = _table("partitions", "Progress per partition", head, rows, narrow=narrow)
    return table + note + notes


def fleet_table(figures: Figures) -> str:
    """The fleet as status shows it: partitions done, held (each with its worker) and
    free; empty without a plan."""
    seen = fleet(figures.status)
    if seen is None:
        return ""
    head = ["partition", "worker (pid on host, since)"]
    rows = [_row([str(p.partition), html.escape(seen.holder_of(p))]) for p in seen.held]
    caption = f"Fleet: {seen.summary()}"
    note = (
        '<p class="note">held: a run holds the partition\'s live lease (a worker holds two '
        "briefly: it claims its next partition while the last users of the one before "
        "finish); free: users left and nobody at it (run --partition next claims the lowest "
        "free one).</p>"
    )
    return _table("fleet", caption, head, rows) + note


def status_table(figures: Figures) -> str:
    """Users per status, with shares that stay readable next to 97% ok."""
    statuses = figures.status.total.statuses
    done = figures.status.total.collected
    names = [*STATUSES, *sorted(set(statuses) - set(STATUSES))]
    rows = [
        _row([s, f"{statuses.get(s, 0):,}", _pct(statuses.get(s, 0), done)], cls=f"st-{s}")
        for s in names
    ]
    rows.append(_row(["all", f"{done:,}", _pct(done, done)], cls="total"))
    return _table("statuses", "Users per status", ["status", "users", "share"], rows)


def lists_table(figures: Figures) -> str:
    """Ok users' lists: how many are truncated, incomplete or short."""
    c = figures.lists
    rows = [
        _row(["ok lists", f"{c.ok:,}", _pct(c.ok, c.ok), "every user whose status is ok"]),
        _row(["truncated", f"{c.truncated:,}", _pct(c.truncated, c.ok), "stopped at max_friends"]),
        _row(
            [
                "incomplete",
                f"{c.incomplete:,}",
                _pct(c.incomplete, c.ok),
                "truncated and over 1% short of the profile's count (or no count)",
            ]
        ),
        _row(
            [
                "short",
                f"{c.short:,}",
                _pct(c.short, c.ok),
                "walked to the end, yet over 1% short of the profile's count",
            ]
        ),
    ]
    return _table("lists", "Lists of ok users", ["lists", "users", "share", "meaning"], rows)


def failures_table(figures: Figures) -> str:
    """Failed users per kind of error, most first."""
    failed = figures.status.total.statuses.get("failed", 0)
    if not figures.failures:
        return '<p class="empty" id="failures">no failed user</p>'
    rows = [_row([html.escape(k), f"{n:,}", _pct(n, failed)]) for k, n in figures.failures]
    listed = sum(n for _, n in figures.failures)
    if listed < failed:
        rows.append(_row(["other kinds", f"{failed - listed:,}", _pct(failed - listed, failed)]))
    table = _table("failures", "Failed users by kind of error", ["kind", "users", "share"], rows)
    return table + (
        '<p class="note">The first word of each failed user\'s error; '
        "<code>friendscrape run --retry-failed</code> collects them again.</p>"
    )
