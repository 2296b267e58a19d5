"""The `status` command: where every partition stands, as a table or a JSON document.

The figures are the shared read model (``commands.progress.figures``); this module gives
them their stable, versioned JSON form (``to_json``, ``schema``) that scripts and
dashboards read (docs/monitoring.md describes every field); ``table`` draws the
people's table (``render_table``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from friendscrape.commands.progress.durations import window_label
from friendscrape.commands.progress.figures import (
    JobFacts,
    PartitionStatus,
    RunFacts,
    StatusReport,
    fleet,
    read_status,
)
from friendscrape.commands.status.table import render_table

__all__ = ["SCHEMA_VERSION", "read_status", "render_table", "row_json", "to_json"]

SCHEMA_VERSION = 1
"""Bumped only when a field of the JSON document changes meaning or disappears."""


def _stamp(moment: datetime | None) -> str | None:
    """A time in the JSON document: ISO 8601 UTC to the second."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _run_json(run: RunFacts | None) -> dict[str, Any]:
    if run is None:
        return {
            "rate_limited": None,
            "paused_seconds": None,
            "learned_rate": None,
            "upstream_host": None,
            "simulated": None,
        }
    return {
        "rate_limited": run.rate_limited,
        "paused_seconds": round(run.paused_seconds, 1),
        "learned_rate": _round(run.learned_rate, 2),
        "upstream_host": run.upstream_host or None,
        "simulated": run.simulated,
    }


def row_json(p: PartitionStatus, now: datetime) -> dict[str, Any]:
    """One row of the JSON document (see docs/monitoring.md for each field)."""
    eta_at = None if p.eta_seconds is None else now + timedelta(seconds=p.eta_seconds)
    return {
        "partition": p.partition,
        "users": p.users,
        "collected": p.collected,
        "remaining": p.remaining,
        "percent_done": round(p.percent_done, 2),
        "statuses": dict(p.statuses),
        "avg_friends": _round(p.avg_friends),
        "avg_seconds_per_user": _round(p.avg_seconds, 3),
        "users_per_day_last_hour": round(p.per_day_last_hour, 1),
        "recent_data_seconds": round(p.span or p.window, 1),
        "users_per_day_overall": _round(p.per_day_overall, 1),
        "first_start": _stamp(p.first_start),
        "last_end": _stamp(p.last_end),
        "eta_seconds": _round(p.eta_seconds, 0),
        "eta_at": _stamp(eta_at),
        "eta_estimated": p.eta_estimated,
        "running": p.running,
        "lease_holder": _holder_json(p),
        "active_seconds": round(p.active_seconds, 3),
        **_run_json(p.run),
    }


def _holder_json(p: PartitionStatus) -> dict[str, Any] | None:
    """The live lease's holder: who runs the partition now (None: nobody does)."""
    h = p.holder
    if h is None:
        return None
    return {"host": h.host, "pid": h.pid, "run_id": h.run_id, "since": _stamp(h.acquired_at)}


def _fleet_json(report: StatusReport) -> dict[str, Any] | None:
    """Partitions done, held (with their workers) and free; None without a plan."""
    seen = fleet(report)
    if seen is None:
        return None
    return {
        "done": seen.done,
        "held": len(seen.held),
        "holders": seen.holders,
        "free": seen.free,
        "workers": [{"partition": p.partition, **(_holder_json(p) or {})} for p in seen.held],
    }


def _plan_cut_json(report: StatusReport) -> dict[str, Any]:
    """How the plan was cut: ``balance`` (``pages`` or ``users``), and for pages the
    ``max_friends`` and ``page_size`` it weighed users with; each null when unknown (no
    plan, a plan by users, or a store planned before plans were recorded)."""
    cut = report.plan_cut
    return {
        "balance": cut.balance if cut else None,
        "max_friends": cut.max_friends if cut else None,
        "page_size": cut.page_size if cut else None,
    }


def _job_json(report: StatusReport) -> dict[str, Any]:
    """What the job counts and where from (docs/monitoring.md)."""
    facts = report.facts or JobFacts()
    total = report.total
    eta_all = facts.eta_all_seconds
    return {
        "platform": facts.platform or None,
        "store": report.store or None,
        "first_result": _stamp(total.first_start),
        "last_result": _stamp(total.last_end),
        "workers_seen": facts.workers_seen,
        "workers_running": facts.workers_running,
        "edges_collected": total.friends_ok,
        "mean_friends_per_ok_user": _round(total.avg_friends),
        "simulated": facts.simulated,
        "eta_all_workers": {
            "workers": facts.workers_needed,
            "eta_seconds": _round(eta_all, 0),
            "eta_at": _stamp(
                None if eta_all is None else report.generated_at + timedelta(seconds=eta_all)
            ),
            "eta_estimated": facts.eta_all_estimated,
        },
    }


def to_json(report: StatusReport) -> dict[str, Any]:
    """The stable JSON document of `friendscrape status --json` (``schema`` versions it)."""
    now = report.generated_at
    total = report.total
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": _stamp(now),
        "window_seconds": total.window,
        "window": window_label(total.window),
        "data_seconds": round(total.span or total.window, 1),
        "planned": report.planned,
        "unplaced_users": report.unplaced,
        **_job_json(report),
        "fleet": _fleet_json(report),
        "plan_cut": _plan_cut_json(report),
        "partitions": [row_json(p, now) for p in report.partitions],
        "total": row_json(total, now),
        "notes": list(report.notes),
    }
