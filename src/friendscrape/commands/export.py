"""The `export` command: results as rows (JSON lines, one object per user, or the CSV of
names), or as a graph: edge and node tables (CSV, JSON lines, Parquet) and whole graphs
(GraphML, GEXF) with one key, the user's id, on both ends of every edge.

Every format streams from the store in user order: memory stays flat whatever the size.
Text formats may be compressed as they are written (gzip or zstd, from the output's
suffix or --compress); Parquet is compressed already."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

from friendscrape import output_file
from friendscrape.commands import changes, export_options, job
from friendscrape.commands import graph_files as files
from friendscrape.commands.csv_rows import CsvRows
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.errors import UsageError
from friendscrape.models import FriendList
from friendscrape.stores import opened_store
from friendscrape.stores.base import EdgeList, NodeRow, ReadStore, WaveRow

T = TypeVar("T")

ROW_FORMATS = ("jsonl", "csv")
GRAPH_FORMATS = ("graphml", "gexf")

DESKTOP_NODES = 500_000
DESKTOP_EDGES = 5_000_000
"""The largest graph a GraphML/GEXF export writes without --force: about what Gephi or
Cytoscape open on a desktop machine with a few GB of memory."""


async def export(
    results: AsyncIterator[FriendList],
    fmt: str,
    path: Path | None,
    *,
    refuse: Sequence[Path] = (),
    compress: str | None = None,
) -> int:
    """Write every result, compressed with ``compress`` (gzip, zstd) when given; returns
    how many users were written. ``refuse``: the store's files, which the output must
    not be."""
    if fmt not in ROW_FORMATS:
        msg = f"unknown export format {fmt!r}: choose jsonl or csv"
        raise UsageError(msg)
    count = 0
    with output_file.opened(path, refuse=refuse, compress=compress) as out:
        if fmt == "jsonl":
            async for result in results:
                out.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
                count += 1
        else:
            writer = CsvRows(out)
            writer.writerow(["user_id", "screen_name", "friend_name", "friend_id", "source"])
            async for result in results:
                _write_csv_rows(writer, result)
                count += 1
    return count


def _write_csv_rows(writer: CsvRows, result: FriendList) -> None:
    """One user's rows of the ``csv`` export, a friend to a row."""
    names = result.friend_names
    # Sources without ids (twitter-mobile) leave friend_id empty.
    ids = result.friend_ids if len(result.friend_ids) == len(names) else [""] * len(names)
    n = len(names)
    rows = zip(
        repeat(result.user_id, n),
        repeat(result.screen_name, n),
        names,
        ids,
        repeat(result.source, n),
        strict=True,
    )
    if "\r" in "".join((result.user_id, result.screen_name, result.source, *names, *ids)):
        for row in rows:
            writer.write_quoting(row)
    else:
        writer.write_plain(rows)


@dataclass(frozen=True, slots=True)
class GraphExport:
    """What a graph export writes: ``fmt`` (edges, nodes, graphml, gexf), the table format
    ``table`` (csv, jsonl, parquet) of edges and nodes, its compression (gzip, zstd or
    None), and which part of the graph."""

    fmt: str
    table: str = "csv"
    compress: str | None = None
    within: bool = False
    partition: int | None = None
    force: bool = False


async def export_graph(
    store: ReadStore, spec: GraphExport, path: Path | None, *, refuse: Sequence[Path] = ()
) -> str:
    """Write the graph export ``spec``; returns what was written, for people.
    ``refuse``: the store's files, which the output must not be."""
    if spec.fmt in GRAPH_FORMATS:
        await _check_size(store, spec)
    if spec.fmt in {"nodes", "edges"}:
        if spec.table == "parquet" and path is None:
            msg = "Parquet is a binary file: give --output FILE.parquet"
            raise UsageError(msg)
        if spec.table == "parquet" and spec.compress is not None:
            msg = (
                "Parquet is compressed already: give --output FILE.parquet "
                "(no .gz or .zst) and no --compress"
            )
            raise UsageError(msg)
        if spec.table == "parquet":
            files.pyarrow_modules()  # before the output file is started
    # Every stream of the store is closed here, in order, however the writing ends (a
    # reader gone mid-list included): left to the loop's finalizer, a store's read-ahead
    # was closed twice at once, or after the store.
    async with (
        aclosing(changes.closing(_edges(store, spec))) as edges,
        aclosing(changes.closing(store.nodes(partition=spec.partition))) as rows,
    ):
        if spec.fmt in {"nodes", "edges"}:
            binary = spec.table == "parquet"
            opened = output_file.opened(path, binary=binary, refuse=refuse, compress=spec.compress)
            with opened as out:
                if spec.fmt == "edges":
                    return f"edges of {await _write_edges(spec.table, edges, out)} users"
                return f"{await _write_nodes(spec.table, rows, out)} nodes"
        writer = files.graphml if spec.fmt == "graphml" else files.gexf
        with output_file.opened(path, refuse=refuse, compress=spec.compress) as out:
            counts = await writer(rows, edges, out)
    return (
        f"a graph of {counts.users} users, {counts.outside} friends outside the job and "
        f"{counts.edges} edges"
    )


async def _write_edges(table: str, edges: AsyncIterator[EdgeList], out: Any) -> int:
    if table == "parquet":
        return await files.edges_parquet(edges, out)
    if table == "jsonl":
        return await files.edges_jsonl(edges, out)
    return await files.edges_csv(edges, out)


async def _write_nodes(table: str, nodes: AsyncIterator[NodeRow], out: Any) -> int:
    if table == "parquet":
        return await files.nodes_parquet(nodes, out)
    if table == "jsonl":
        return await files.nodes_jsonl(nodes, out)
    return await files.nodes_csv(nodes, out)


async def _edges(store: ReadStore, spec: GraphExport) -> AsyncIterator[EdgeList]:
    # The store's stream is closed with this one, not left to the loop's finalizer,
    # which may run it after the store has closed.
    async with aclosing(changes.closing(store.edge_lists(partition=spec.partition))) as lists:
        async for edges in lists:
            yield files.keyed(files.kept(edges, within=spec.within))


async def _check_size(store: ReadStore, spec: GraphExport) -> None:
    """Refuse, before writing a byte, a graph a desktop tool cannot open (unless --force)."""
    if spec.force:
        return
    summary = await store.partition_summary(since=datetime.now(UTC))
    if spec.partition is None:
        users = await store.user_count()
    else:
        users = sum(p.user_count for p in await store.partitions() if p.number == spec.partition)
    edges = sum(s.friends for s in summary if spec.partition in (None, s.partition))
    if users <= DESKTOP_NODES and edges <= DESKTOP_EDGES:
        return
    upto = "up to " if spec.within else ""
    msg = (
        f"the graph has {users:,} users and {upto}{edges:,} edges, more than a desktop "
        f"tool opens (limit {DESKTOP_NODES:,} users, {DESKTOP_EDGES:,} edges): export "
        "--format edges/nodes, cut it with --within or --partition K, or add --force"
    )
    raise UsageError(msg)


JSONL_SUFFIXES = ("jsonl", "ndjson", "json")


def chosen_format(asked: str | None, output: Path | None) -> str:
    """The format to write: ``--format``, else jsonl for an output named so (or with no
    suffix, or stdout). ``--output friends.csv`` or ``x.xlsx`` with no --format is refused:
    it would hold JSON lines under a name that says otherwise."""
    if asked is not None:
        return asked
    output_file.check_suffix(
        output,
        "with no --format, export writes JSON lines",
        JSONL_SUFFIXES,
        f"--format {'|'.join(export_options.FORMATS)}",
    )
    return "jsonl"


def compression(output: Path | None, asked: str | None) -> str | None:
    """The output's compression: ``--compress``, else the --output suffix's (one line
    when they contradict)."""
    return output_file.compression(output, asked)


async def export_results(
    settings: Settings,
    fmt: str,
    output: Path | None,
    *,
    compress: str | None = None,
    wave: int | None = None,
) -> tuple[int, str]:
    """Export every result row (jsonl or csv), compressed with ``compress`` if given, as
    of ``wave`` when given; returns the users exported and the words naming the job's
    platform (job.of_the_job)."""
    refuse = output_file.store_files(settings.store)
    output_file.check(output, refuse=refuse, compress=compress)  # before the store opens
    async with opened_store(store_config(settings), read_only=True) as store:
        if wave is not None:
            await changes.check_waves(store, wave)
        rows = store.results() if wave is None else _as_results(store.wave_rows(wave))
        async with aclosing(changes.closing(rows)) as results:
            count = await export(results, fmt, output, refuse=refuse, compress=compress)
        return count, await job.of_the_job(store)


async def _as_results(rows: AsyncIterator[WaveRow]) -> AsyncGenerator[FriendList, None]:
    async with aclosing(changes.closing(rows)) as streamed:
        async for row in streamed:
            yield row.result()


@dataclass(frozen=True, slots=True)
class ChangesExport:
    """A changes export: between waves ``first`` and ``second`` (None: the latest and the
    one before it), as ``table`` (csv, jsonl, parquet), compressed with ``compress``."""

    first: int | None
    second: int | None
    table: str = "csv"
    compress: str | None = None


async def export_changes(settings: Settings, spec: ChangesExport, output: Path | None) -> str:
    """Write the follows and unfollows between two waves; returns what was written."""
    refuse = output_file.store_files(settings.store)
    if spec.table == "parquet" and (output is None or spec.compress is not None):
        msg = "Parquet is a binary file, compressed already: give --output FILE.parquet"
        raise UsageError(msg)
    output_file.check(output, refuse=refuse, compress=spec.compress)
    async with opened_store(store_config(settings), read_only=True) as store:
        latest = await store.current_wave()
        second = spec.second if spec.second is not None else latest
        first = spec.first if spec.first is not None else second - 1
        if latest < 2:
            msg = (
                "the job has one wave: open the next with 'friendscrape waves new' and "
                "collect it, then export its changes"
            )
            raise UsageError(msg)
        await changes.check_waves(store, first, second)
        if first >= second:
            msg = f"--from-wave ({first}) must be before --to-wave ({second})"
            raise UsageError(msg)
        binary = spec.table == "parquet"
        opened = output_file.opened(output, binary=binary, refuse=refuse, compress=spec.compress)
        with opened as out:
            counts = await changes.write(store, first, second, spec.table, out)
    return (
        f"changes from wave {first} to wave {second}: {counts.follows} follows, "
        f"{counts.unfollows} unfollows, {counts.not_comparable} users not comparable"
    )


async def export_graph_from(settings: Settings, spec: GraphExport, output: Path | None) -> str:
    """Open the store read-only and write the graph export ``spec``; returns what was
    written and of which platform's job, for people."""
    refuse = output_file.store_files(settings.store)
    # before the store is opened
    output_file.check(output, refuse=refuse, compress=spec.compress)
    async with opened_store(store_config(settings), read_only=True) as store:
        what = await export_graph(store, spec, output, refuse=refuse)
        return what + await job.of_the_job(store)
