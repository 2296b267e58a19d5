"""Figures built from what a store counted, for both stores: status rows and summaries,
time buckets, histograms and error kinds, from the rows their SQL returns.

Each store counts in its own SQL (no per-user rows reach Python); what the counts become
is written here once. Column names each function reads are in its docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

from friendscrape.stores.base import RunSpan, SampleBucket, StatusRow, StatusSummary
from friendscrape.stores.rows import Row, moment


def at_least_one(value: int) -> int:
    """A bucket width, bin count or limit as the SQL gets it: below 1 counts as 1."""
    return max(int(value), 1)


def bin_width(top: int, bins: int) -> int:
    """Equal bins from 0 to ``top``, at most ``bins`` of them."""
    return max(-(-(int(top) + 1) // at_least_one(bins)), 1)


def status_row(row: Row) -> StatusRow:
    """One user's figures: user_id, part, status, friend_count, start_at, end_at."""
    return StatusRow(
        user_id=row["user_id"],
        partition=int(row["part"] or 0),
        status=row["status"] or "ok",
        friend_count=int(row["friend_count"] or 0),
        start_at=moment(row["start_at"]),
        end_at=moment(row["end_at"]),
    )


def status_summary(row: Row) -> StatusSummary:
    """One partition's and status's figures: part, status, users, friends, seconds,
    first_start, last_end, recent."""
    return StatusSummary(
        partition=int(row["part"] or 0),
        status=str(row["status"]),
        users=int(row["users"]),
        friends=int(row["friends"] or 0),
        seconds=float(row["seconds"] or 0.0),
        first_start=moment(row["first_start"] or None),
        last_end=moment(row["last_end"] or None),
        recent=int(row["recent"] or 0),
    )


def sample_bucket(row: Row, width: int) -> SampleBucket:
    """Run samples summed over one bucket of ``width`` seconds: b (the bucket's number
    since the epoch), part, users_done, pages, rate_limited, paused_seconds,
    learned_rate, samples."""
    learned = row["learned_rate"]
    return SampleBucket(
        start=datetime.fromtimestamp(int(row["b"]) * width, UTC),
        partition=int(row["part"]),
        users_done=int(row["users_done"] or 0),
        pages=int(row["pages"] or 0),
        rate_limited=int(row["rate_limited"] or 0),
        paused_seconds=float(row["paused_seconds"] or 0.0),
        learned_rate=None if learned is None else float(learned),
        samples=int(row["samples"]),
    )


def finished_counts(rows: Iterable[Row]) -> list[tuple[int, int, int]]:
    """Users per (partition, end-time bucket): part, b, n."""
    return [(int(r["part"] or 0), int(r["b"]), int(r["n"])) for r in rows]


def bins(rows: Iterable[Row]) -> list[tuple[int, int]]:
    """Users per histogram bin: b, n."""
    return [(int(r["b"]), int(r["n"])) for r in rows]


def failure_kinds(rows: Iterable[Row]) -> list[tuple[str, int]]:
    """Failed users per kind of error: kind, n (an empty kind reads ``(none)``)."""
    return [(str(r["kind"]) or "(none)", int(r["n"])) for r in rows]


def run_span(row: Row) -> RunSpan:
    """One run's samples in one partition: part, run_id, first_at, last_at, final."""
    return RunSpan(
        partition=int(row["part"]),
        run_id=str(row["run_id"] or ""),
        first_at=cast("datetime", moment(row["first_at"])),
        last_at=cast("datetime", moment(row["last_at"])),
        final=bool(row["final"]),
    )


def source_counts(rows: Iterable[Row]) -> list[tuple[str, int]]:
    """Results per source: source, n (a row without one reads "")."""
    return [(str(r["source"] or ""), int(r["n"])) for r in rows]
