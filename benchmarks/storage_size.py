"""Bytes a collected user costs on disk in each store, at the crawl's list sizes.

A job of USERS users of the simulator's graph (its friend-count distribution, lists cut
at the default --max-friends of 2,000; users of every kind, so some 5 % hold no list),
imported and planned, then every user's result saved as a twitter-mobile run saves it
(names only, each friend matched to the job's users at save).

- SQLite: the store file's size (write-ahead log checkpointed) over the results, and
  its growth from the planned store before the first result over the results; with the
  page size of new stores and with 16 KiB pages (what stores used before), each with the
  save's CPU and bytes written (write calls' bytes, the log's checkpoints included) per
  result, and the CPU of reading every result back as an export does.
- BigQuery: the logical bytes of the rows written, by BigQuery's documented data-size
  rules (STRING: 2 bytes + its UTF-8 length; INT64, FLOAT64, TIMESTAMP: 8; BOOL: 1;
  an ARRAY: the sum of its elements; NULL: 0), and what a million such users cost a
  month in logical storage at the list prices given in docs/bigquery.md.

Target: at most 4 KB (4,096 bytes) per result on SQLite.

    python benchmarks/storage_size.py [--users N]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from friendscrape.models import FriendList, Status, User
from friendscrape.simulator.graph import AccountKind, SyntheticGraph
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import sqlite as sqlite_module
from friendscrape.stores.sqlite import SqliteStore

USERS = 20_000
MAX_FRIENDS = 2_000
BATCH = 50
TARGET = 4_096
OLD_PAGE = 16_384
GIB = 1024**3
# Logical storage list prices per GiB and month (US multi-region; docs/bigquery.md).
ACTIVE, LONG_TERM = 0.02, 0.01
# On-demand query price per TiB billed (docs/bigquery.md), and the columns status and
# report figures name: a query is billed for every value of each column it names.
ON_DEMAND_TIB = 6.25
FIGURES = frozenset(
    {"user_id", "partition", "status", "friend_count", "start_at", "end_at", "row_key"}
    | {"attempts", "wave"}
)
JOB_USERS = 3_600_000
T0 = datetime(2024, 5, 1, tzinfo=UTC)

_FIXED = {"INT64": 8, "FLOAT64": 8, "TIMESTAMP": 8, "BOOL": 1, "BOOLEAN": 1}


def _results(graph: SyntheticGraph) -> Iterator[FriendList]:
    for n, account in enumerate(graph.accounts()):
        ok = account.kind is AccountKind.OK
        names = graph.listing(account, 0, min(account.following_count, MAX_FRIENDS)) if ok else []
        yield FriendList(
            user_id=account.user_id,
            screen_name=account.screen_name,
            status=Status.OK if ok else Status.NOT_FOUND,
            source="twitter-mobile",
            partition=1,
            start_at=T0 + timedelta(seconds=n),
            end_at=T0 + timedelta(seconds=n + 3),
            friend_names=tuple(names),
            following_count=account.following_count if ok else None,
            truncated=account.following_count > MAX_FRIENDS and ok,
            error=None if ok else "not_found",
        )


def _value_bytes(kind: str, value: Any) -> int:
    if value is None:
        return 0
    if kind == "STRING":
        return 2 + len(str(value).encode())
    return _FIXED[kind]


def bigquery_bytes(result: FriendList) -> int:
    """The logical bytes of one ``user_friends`` row as friendscrape writes it."""
    return row_bytes(bigquery_row(result))


def bigquery_row(result: FriendList) -> dict[str, Any]:
    """One ``user_friends`` row as friendscrape writes it (a fixed run id and key)."""
    return schema.to_row(result, run_id="0123456789ab", key=schema.row_key(result, "0" * 12))


def row_bytes(row: dict[str, Any], columns: frozenset[str] | None = None) -> int:
    """BigQuery's logical bytes of one results row (its public per-type sizes), of the
    ``columns`` named (all when None)."""
    total = 0
    for field in schema.RESULTS_SCHEMA:
        if columns is not None and field.name not in columns:
            continue
        value = row.get(field.name)
        if field.mode == "REPEATED":
            total += sum(_value_bytes(field.field_type, v) for v in value or ())
        else:
            total += _value_bytes(field.field_type, value)
    return total


def file_size(path: Path) -> int:
    """The store file's bytes once its write-ahead log is folded in."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


def _written() -> int:
    """Bytes this process has passed to write calls so far (Linux)."""
    with Path("/proc/self/io").open() as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


@dataclass(frozen=True)
class SqliteFigures:
    """One store's figures, per result."""

    page_size: int
    per_file: float
    per_growth: float
    save_ms: float
    written: float
    export_ms: float


async def _fill(path: Path, graph: SyntheticGraph, results: list[FriendList]) -> tuple[int, ...]:
    """Saves the job's results; returns the planned store's size before them, the saves'
    CPU nanoseconds and bytes written, and the CPU nanoseconds of reading them back."""
    store = SqliteStore(path)
    await store.open()
    try:
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in graph.accounts()]
        )
        await store.plan_partitions(1)
        await store.close()
        empty = file_size(path)
        await store.open()
        cpu, written = time.process_time_ns(), _written()
        for start in range(0, len(results), BATCH):
            await store.save(results[start : start + BATCH])
        await store.close()
        cpu, written = time.process_time_ns() - cpu, _written() - written
        await store.open()
        read = time.process_time_ns()
        count = sum([1 async for _ in store.results()])
        read = time.process_time_ns() - read
        assert count == len(results)
    finally:
        await store.close()
    return empty, cpu, written, read


def _sqlite(graph: SyntheticGraph, results: list[FriendList], page_size: int) -> SqliteFigures:
    sqlite_module.PAGE_SIZE = page_size
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "storage.db"
        empty, cpu, written, read = asyncio.run(_fill(path, graph, results))
        size = file_size(path)
    n = len(results)
    return SqliteFigures(
        page_size, size / n, (size - empty) / n, cpu / n / 1e6, written / n, read / n / 1e6
    )


def _figures_bytes(results: list[FriendList]) -> None:
    """What one status or report query is billed at the job's size, with and without the
    lists (figures read friend_count; they named friend_names before)."""
    rows = [bigquery_row(r) for r in results]
    figures = statistics.mean(row_bytes(row, FIGURES) for row in rows)
    names = statistics.mean(row_bytes(row, frozenset({"friend_names"})) for row in rows)
    tib = 1024**4
    now, before = figures * JOB_USERS, (figures + names) * JOB_USERS
    print(
        f"BigQuery figures queries: {figures:,.0f} bytes billed per result"
        f" ({figures + names:,.0f} when they named the lists); at {JOB_USERS:,} users"
        f" {now / GIB:.2f} GiB a query, ${now / tib * ON_DEMAND_TIB:.4f} on demand"
        f" (was {before / GIB:.1f} GiB, ${before / tib * ON_DEMAND_TIB:.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    graph = SyntheticGraph(args.users)
    results = list(_results(graph))
    names = statistics.mean(len(r.friend_names) for r in results)
    chars = statistics.mean(len(n) for r in results for n in r.friend_names)
    print(f"{len(results):,} results, {names:.0f} names a list on average, {chars:.1f} characters")
    new = _sqlite(graph, results, sqlite_module.PAGE_SIZE)
    old = _sqlite(graph, results, OLD_PAGE)
    for fig in (new, old):
        print(
            f"SQLite, {fig.page_size // 1024} KiB pages: {fig.per_file:7,.0f} bytes per result"
            f" ({fig.per_growth:,.0f} of them the results' own: growth from the planned store);"
            f" save {fig.save_ms:.3f} ms CPU and {fig.written / 1e3:,.1f} KB written,"
            f" read back {fig.export_ms:.3f} ms CPU per result"
        )
    per_file = new.per_file
    per_bq = statistics.mean(bigquery_bytes(r) for r in results)
    million = per_bq * 1_000_000 / GIB
    print(
        f"BigQuery: {per_bq:7,.0f} logical bytes per result; a million users: {million:.2f} GiB,"
        f" ${million * ACTIVE:.2f} a month active, ${million * LONG_TERM:.2f} long-term"
    )
    _figures_bytes(results)
    ok = per_file <= TARGET
    print(f"{'PASS' if ok else 'FAIL'}  SQLite: <= {TARGET:,} bytes per result ({per_file:,.0f})")
    # The page size must not cost what it saves: the save's CPU within a tenth of before.
    cheap = new.save_ms <= old.save_ms * 1.1
    print(
        f"{'PASS' if cheap else 'FAIL'}  SQLite {new.page_size // 1024} KiB pages: save CPU"
        f" <= 1.1 x {OLD_PAGE // 1024} KiB pages' ({new.save_ms / old.save_ms:.2f} x)"
    )
    return 0 if ok and cheap else 1


if __name__ == "__main__":
    sys.exit(main())
