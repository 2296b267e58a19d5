"""The changes export: every follow added or removed between two waves of a job.

One row per change: ``source_id`` (the user), ``target`` (the friend's upstream id where
the source gave one, else its name), ``change`` (``follow`` or ``unfollow``), and
``from_at``/``to_at``: the user's result times in the two waves, which bound when the
change happened. A user with a collected list (status ok) in only one of the two waves is
one row, ``change`` = ``not_comparable`` (no target), never a mass of changes.

The two waves stream from the store side by side in user order; a user whose two lists
have the same content hash is passed over without decoding either, so memory stays flat
and the time goes to the lists that changed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TextIO, TypeVar

from friendscrape.commands import graph_files as files
from friendscrape.commands.csv_rows import CsvRows
from friendscrape.errors import UsageError
from friendscrape.models import FriendList
from friendscrape.stores.base import WaveRow, WaveStore
from friendscrape.stores.waves import stored_hash

T = TypeVar("T")

COLUMNS = ("source_id", "target", "change", "from_at", "to_at")

FOLLOW, UNFOLLOW, NOT_COMPARABLE = "follow", "unfollow", "not_comparable"

_BATCH = 20_000
"""Changes per Parquet batch (a row group gathers several)."""


@dataclass(slots=True)
class Counts:
    """What a changes export wrote: follows, unfollows, users not comparable."""

    follows: int = 0
    unfollows: int = 0
    not_comparable: int = 0

    def add(self, change: str) -> None:
        """Count one written row."""
        if change == FOLLOW:
            self.follows += 1
        elif change == UNFOLLOW:
            self.unfollows += 1
        else:
            self.not_comparable += 1


Change = tuple[str, str, str, str | None, str | None]


async def check_waves(store: WaveStore, *waves: int) -> int:
    """The current wave; UsageError naming a wave the job does not have."""
    latest = await store.current_wave()
    for wave in waves:
        if not 1 <= wave <= latest:
            msg = f"no wave {wave}: the job has waves 1 to {latest} (see 'friendscrape waves list')"
            raise UsageError(msg)
    return latest


def _order(row: WaveRow) -> tuple[int, str]:
    return len(row.user_id), row.user_id


async def closing(items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """``items``, closed (when they can be) as soon as this is."""
    try:
        async for item in items:
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


async def paired(
    first: AsyncIterator[WaveRow], second: AsyncIterator[WaveRow]
) -> AsyncGenerator[tuple[WaveRow | None, WaveRow | None], None]:
    """Two waves' rows joined by user (both streams in user order)."""
    a, b = await anext(first, None), await anext(second, None)
    while a is not None or b is not None:
        if b is None or (a is not None and _order(a) < _order(b)):
            yield a, None
            a = await anext(first, None)
        elif a is None or _order(b) < _order(a):
            yield None, b
            b = await anext(second, None)
        else:
            yield a, b
            a, b = await anext(first, None), await anext(second, None)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _keys(result: FriendList) -> list[str]:
    ids = result.friend_ids if len(result.friend_ids) == len(result.friend_names) else ()
    if not ids:
        return list(result.friend_names)
    return [i or n for i, n in zip(ids, result.friend_names, strict=True)]


def user_changes(a: WaveRow | None, b: WaveRow | None) -> Iterator[Change]:
    """One user's changes between the waves of ``a`` and ``b`` (either may be missing)."""
    ok_a = a is not None and a.status == "ok"
    ok_b = b is not None and b.status == "ok"
    user = a.user_id if a is not None else b.user_id if b is not None else ""
    times = (_iso(a.end_at) if a else None, _iso(b.end_at) if b else None)
    if ok_a != ok_b:
        yield (user, "", NOT_COMPARABLE, *times)
        return
    if not ok_a or a is None or b is None or stored_hash(a) == stored_hash(b):
        return
    before, after = _keys(a.result()), _keys(b.result())
    had, has = set(before), set(after)
    for key in dict.fromkeys(after):
        if key not in had:
            yield (user, key, FOLLOW, *times)
    for key in dict.fromkeys(before):
        if key not in has:
            yield (user, key, UNFOLLOW, *times)


async def changes(store: WaveStore, first: int, second: int) -> AsyncGenerator[Change, None]:
    """Every change between waves ``first`` and ``second``, user by user."""
    async with (
        aclosing(closing(store.wave_rows(first))) as a,
        aclosing(closing(store.wave_rows(second))) as b,
        aclosing(paired(a, b)) as pairs,
    ):
        async for x, y in pairs:
            for change in user_changes(x, y):
                yield change


async def write_csv(rows: AsyncIterator[Change], out: TextIO, counts: Counts) -> None:
    """The changes as CSV, a header first."""
    writer = CsvRows(out)
    writer.writerow(COLUMNS)
    async for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        counts.add(row[2])


async def write_jsonl(rows: AsyncIterator[Change], out: TextIO, counts: Counts) -> None:
    """The changes as JSON lines, one object per change."""
    async for row in rows:
        out.write(json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False) + "\n")
        counts.add(row[2])


async def write_parquet(rows: AsyncIterator[Change], out: BinaryIO, counts: Counts) -> None:
    """The changes as Parquet (zstd), written a batch at a time."""
    pa, pq = files.pyarrow_modules()
    schema = pa.schema(
        [
            ("source_id", pa.string()),
            ("target", pa.string()),
            ("change", pa.dictionary(pa.int8(), pa.string())),
            ("from_at", pa.timestamp("us", tz="UTC")),
            ("to_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    batch: list[Change] = []

    def flush(writer: Any) -> None:
        columns: list[Sequence[Any]] = (
            list(zip(*batch, strict=True)) if batch else [[] for _ in COLUMNS]
        )
        arrays = [
            pa.array(columns[0], pa.string()),
            pa.array(columns[1], pa.string()),
            pa.array(columns[2], pa.string()).dictionary_encode().cast(schema.field(2).type),
            *(pa.array(_times(columns[i]), pa.timestamp("us", tz="UTC")) for i in (3, 4)),
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        batch.clear()

    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        async for row in rows:
            batch.append(row)
            counts.add(row[2])
            if len(batch) >= _BATCH:
                flush(writer)
        if batch or counts.follows + counts.unfollows + counts.not_comparable == 0:
            flush(writer)


def _times(values: Any) -> list[datetime | None]:
    return [datetime.fromisoformat(v) if v else None for v in values]


async def write(store: WaveStore, first: int, second: int, table: str, out: Any) -> Counts:
    """Write the changes between two waves as ``table`` (csv, jsonl, parquet) to ``out``."""
    counts = Counts()
    async with aclosing(changes(store, first, second)) as rows:
        if table == "parquet":
            await write_parquet(rows, out, counts)
        elif table == "jsonl":
            await write_jsonl(rows, out, counts)
        else:
            await write_csv(rows, out, counts)
    return counts
