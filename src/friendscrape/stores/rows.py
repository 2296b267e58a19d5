"""Rows to records, for both stores: what each column of a row becomes, written once.

A row is what a store's query returns (``sqlite3.Row``, a BigQuery row as a dict); each
store's SQL names its columns as the functions here read them (listed in each
docstring), so a new read is its SQL in two dialects and, at most, one function here.
Values come as each store keeps them: times as datetimes (BigQuery) or ISO 8601 text
(SQLite), lists as arrays (BigQuery) or, on SQLite, compact blobs (JSON text in rows of
older versions; ``lists_codec`` reads both), and NULL where a row of the
original BigQuery deployment lacks a column; the functions read both alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol, cast

from friendscrape.models import FriendList, Partition, Status, User, utc
from friendscrape.stores import lists_codec
from friendscrape.stores.base import LeaseHolder, NodeRow, RunSample


class Row(Protocol):
    """A row of a query, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def moment(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value))
    return utc(value)


def strings(value: str | bytes | Sequence[str] | None) -> tuple[str, ...]:
    """A stored list of names or ids (an array, its JSON text, or SQLite's compact blob)
    as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        return tuple(lists_codec.decode(value))
    return tuple(value)


def friend_list(row: Row) -> FriendList:
    """A result: user_id, screen_name, status, source, partition, start_at, end_at,
    friend_names, friend_ids, following_count, truncated, error, attempts."""
    status = row["status"]
    attempts = row["attempts"]
    return FriendList(
        user_id=row["user_id"],
        screen_name=row["screen_name"] or "",
        status=Status(status) if status else Status.OK,
        source=row["source"] or "",
        partition=row["partition"] or 0,
        # Passed on as stored: a row of the original deployment may lack its times.
        start_at=cast("datetime", moment(row["start_at"])),
        end_at=cast("datetime", moment(row["end_at"])),
        friend_names=strings(row["friend_names"]),
        friend_ids=strings(row["friend_ids"]),
        following_count=row["following_count"],
        truncated=bool(row["truncated"]),
        error=row["error"],
        attempts=1 if attempts is None else int(attempts),
    )


def user(row: Row) -> User:
    """A user to collect: user_id, screen_name, following_count, resolved_id."""
    return User(
        user_id=row["user_id"],
        screen_name=row["screen_name"] or "",
        following_count=row["following_count"],
        resolved_id=row["resolved_id"],
    )


def partition(row: Row) -> Partition:
    """One partition of the plan: number, user_count, min_user_id, max_user_id."""
    return Partition(
        number=int(row["number"]),
        user_count=int(row["user_count"]),
        min_user_id=row["min_user_id"],
        max_user_id=row["max_user_id"],
    )


def node_row(row: Row) -> NodeRow:
    """A node of the graph: id, name, status, following_count, friend_count, truncated,
    partition, collected_at (the columns of BigQuery's ``nodes`` view)."""
    return NodeRow(
        user_id=row["id"],
        name=row["name"],
        status=row["status"],
        following_count=row["following_count"],
        friend_count=row["friend_count"],
        truncated=bool(row["truncated"]),
        partition=int(row["partition"]),
        collected_at=moment(row["collected_at"]),
    )


def lease_holder(row: Row) -> LeaseHolder:
    """A stored lease: host, pid, run_id, acquired_at, expires_at."""
    return LeaseHolder(
        host=row["host"] or "",
        pid=int(row["pid"] or 0),
        run_id=row["run_id"] or "",
        expires_at=cast("datetime", moment(row["expires_at"])),
        acquired_at=moment(row["acquired_at"]),
    )


def leases(rows: Iterable[Row]) -> dict[int, LeaseHolder]:
    """Each partition's lease from rows of part and ``lease_holder``'s columns, the
    first row of a partition winning (BigQuery may hold two after a race)."""
    held: dict[int, LeaseHolder] = {}
    for row in rows:
        held.setdefault(int(row["part"]), lease_holder(row))
    return held


SAMPLE_COLUMNS = tuple(f.name for f in fields(RunSample))
"""The columns of ``run_samples``, in order: RunSample's fields."""


def sample_values(sample: RunSample) -> dict[str, Any]:
    """One run sample as its row's values, by column (each store converts times)."""
    return {name: getattr(sample, name) for name in SAMPLE_COLUMNS}


def run_sample(row: Row) -> RunSample:
    """A run sample from a row of ``SAMPLE_COLUMNS``."""
    learned = row["learned_rate"]
    return RunSample(
        run_id=row["run_id"],
        partition=int(row["partition"]),
        at=cast("datetime", moment(row["at"])),
        source=row["source"] or "",
        upstream_host=row["upstream_host"] or "",
        simulated=bool(row["simulated"]),
        users_done=int(row["users_done"] or 0),
        pages=int(row["pages"] or 0),
        rate_limited=int(row["rate_limited"] or 0),
        paused_seconds=float(row["paused_seconds"] or 0.0),
        learned_rate=None if learned is None else float(learned),
        final=bool(row["final"]),
    )
