"""The edges Parquet writer: row groups capped by the bytes they gather as well as by
their rows (lists of long handles and DIDs no longer hold 31 MB a group), never splitting
a user's list, and values holding newlines kept whole; Arrow allocates with
jemalloc unless the user chose an allocator."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pyarrow.parquet as pq
import pytest

from friendscrape.commands import graph_files
from friendscrape.stores.base import EdgeList


def _list(user: int, friends: int, name: str = "") -> EdgeList:
    names = [name or f"friend{user}-{i}.long-handle.bsky.social" for i in range(friends)]
    targets = [f"did:plc:{user:012d}{i:012d}" if i % 2 else "" for i in range(friends)]
    return EdgeList(
        source_id=f"did:plc:user{user:020d}",
        source_name=f"user{user}.bsky.social",
        platform="bluesky",
        names=names,
        targets=targets,
        known=[bool(i % 2) for i in range(friends)],
    )


async def _rows(lists: list[EdgeList]) -> AsyncIterator[EdgeList]:
    for edges in lists:
        yield edges


def _expected(lists: list[EdgeList]) -> list[dict[str, object]]:
    return [
        {
            "source_id": e.source_id,
            "target_id": target or None,
            "source_name": e.source_name,
            "target_name": name,
            "position": i,
            "platform": e.platform,
        }
        for e in lists
        for i, (name, target) in enumerate(zip(e.names, e.targets, strict=True))
    ]


async def test_row_groups_are_capped_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_files, "PARQUET_BATCH", 1_000)
    monkeypatch.setattr(graph_files, "ROW_GROUP_BYTES", 200_000)
    lists = [_list(user, 550) for user in range(40)]
    out = io.BytesIO()
    assert await graph_files.edges_parquet(_rows(lists), out) == 40
    out.seek(0)
    meta = pq.ParquetFile(out).metadata
    rows = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    # 22,000 edges of about 130 bytes, some 200 KB a group: far below ROW_GROUP's rows.
    assert meta.num_row_groups > 5
    assert max(rows) < graph_files.ROW_GROUP
    assert all(r % 550 == 0 for r in rows)  # a user's list is never split
    out.seek(0)
    assert pq.read_table(out).to_pylist() == _expected(lists)


async def test_short_names_fill_a_group_by_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_files, "PARQUET_BATCH", 1_000)
    monkeypatch.setattr(graph_files, "ROW_GROUP", 5_000)
    lists = [_list(user, 100, name="a") for user in range(120)]
    out = io.BytesIO()
    await graph_files.edges_parquet(_rows(lists), out)
    out.seek(0)
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [5_000, 5_000, 2_000]


async def test_values_holding_newlines_are_kept_whole() -> None:
    lists = [_list(0, 3), _list(1, 3, name="two\nlines"), _list(2, 2, name="")]
    out = io.BytesIO()
    await graph_files.edges_parquet(_rows(lists), out)
    out.seek(0)
    assert pq.read_table(out).to_pylist() == _expected(lists)


def _pool(env: dict[str, str]) -> str:
    code = (
        "from friendscrape.commands.graph_files import pyarrow_modules\n"
        "pa, _ = pyarrow_modules()\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_arrow_allocates_with_jemalloc_unless_told() -> None:
    env = {k: v for k, v in os.environ.items() if k != graph_files.ARROW_POOL}
    assert _pool(env) == "jemalloc"
    assert _pool({**env, graph_files.ARROW_POOL: "system"}) == "system"
    assert _pool({**env, graph_files.ARROW_POOL: ""}) == "jemalloc"  # blank: as unset
