"""Writers of the graph exports: edge and node tables (CSV, JSON lines, Parquet) and whole
graphs (GraphML, GEXF), each written as rows stream in, never holding the graph.

Formats: GraphML http://graphml.graphdrawing.org/specification.html, GEXF 1.2
https://gexf.net/schema.html, Parquet https://parquet.apache.org/docs/file-format/.
"""

from __future__ import annotations

import csv
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from xml.sax.saxutils import quoteattr

from friendscrape.errors import UsageError
from friendscrape.stores.base import EdgeList, NodeRow

EDGE_COLUMNS = ("source_id", "target_id", "source_name", "target_name", "position", "platform")
NODE_COLUMNS = (
    "id",
    "name",
    "status",
    "following_count",
    "friend_count",
    "truncated",
    "complete",
    "partition",
    "collected_at",
)
TABLE_FORMATS = ("csv", "jsonl", "parquet")
PARQUET_BATCH = 32_768
"""Edges (or nodes) buffered as Python values before they become Arrow columns."""
ROW_GROUP = 131_072
"""Rows per Parquet row group. The writer keeps every row group's metadata until it
closes, so small groups make memory grow with the file (32,768-row groups reached 377 MB
at 550 million edges); Arrow columns of this many edges take under 10 MB."""

_encode = json.encoder.encode_basestring  # C-accelerated


def kept(edges: EdgeList, *, within: bool) -> EdgeList:
    """``edges`` with only targets that are users of the job when ``within``."""
    if not within or all(edges.known):
        return edges
    pick = [i for i, known in enumerate(edges.known) if known]
    return EdgeList(
        edges.source_id,
        edges.source_name,
        edges.platform,
        [edges.names[i] for i in pick],
        [edges.targets[i] for i in pick],
        [True] * len(pick),
    )


def pyarrow_modules() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or one line naming the extra that installs them."""
    try:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        msg = "Parquet needs pyarrow: pip install 'friendscrape[parquet]'"
        raise UsageError(msg) from None
    return pa, pq


def _time(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def _node_values(node: NodeRow) -> tuple[Any, ...]:
    return (
        node.user_id,
        node.name,
        node.status,
        node.following_count,
        node.friend_count,
        node.truncated,
        node.complete,
        node.partition,
        node.collected_at,
    )


# -- tables ---------------------------------------------------------------------------


async def edges_csv(rows: AsyncIterator[EdgeList], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EDGE_COLUMNS)
    users = 0
    async for e in rows:
        n = len(e.names)
        writer.writerows(
            zip(
                repeat(e.source_id, n),
                e.targets,
                repeat(e.source_name, n),
                e.names,
                range(n),
                repeat(e.platform, n),
                strict=False,
            )
        )
        users += 1
    return users


async def edges_jsonl(rows: AsyncIterator[EdgeList], out: TextIO) -> int:
    users = 0
    async for e in rows:
        head = f'{{"source_id":{_encode(e.source_id)},"target_id":'
        tail = f',"source_name":{_encode(e.source_name)},"target_name":'
        platform = f',"platform":{_encode(e.platform)}}}\n'
        out.writelines(
            f'{head}{_encode(t) if t else "null"}{tail}{_encode(name)},"position":{i}{platform}'
            for i, (t, name) in enumerate(zip(e.targets, e.names, strict=True))
        )
        users += 1
    return users


async def edges_parquet(rows: AsyncIterator[EdgeList], out: BinaryIO) -> int:
    pa, pq = pyarrow_modules()
    schema = pa.schema(
        [
            ("source_id", pa.string()),
            ("target_id", pa.string()),
            ("source_name", pa.string()),
            ("target_name", pa.string()),
            ("position", pa.int32()),
            ("platform", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    cols: list[list[Any]] = [[] for _ in EDGE_COLUMNS]
    pending: list[Any] = []
    users = 0

    def write(writer: Any) -> None:
        writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP)
        pending.clear()

    def flush() -> None:
        table = pa.Table.from_arrays(
            [
                pa.array(cols[0], pa.string()),
                pa.array(cols[1], pa.string()),
                pa.array(cols[2], pa.string()),
                pa.array(cols[3], pa.string()),
                pa.array(cols[4], pa.int32()),
                pa.array(cols[5], pa.string()).dictionary_encode().cast(schema.field(5).type),
            ],
            schema=schema,
        )
        pending.append(table)
        for col in cols:
            col.clear()

    # Statistics (min/max per row group) only for source_id, the column readers filter
    # on: the writer holds every row group's metadata until it closes.
    with pq.ParquetWriter(
        out, schema, compression="zstd", write_statistics=["source_id"]
    ) as writer:
        async for e in rows:
            n = len(e.names)
            cols[0].extend(repeat(e.source_id, n))
            cols[1].extend([t or None for t in e.targets])
            cols[2].extend(repeat(e.source_name, n))
            cols[3].extend(e.names)
            cols[4].extend(range(n))
            cols[5].extend(repeat(e.platform, n))
            users += 1
            if len(cols[0]) >= PARQUET_BATCH:
                flush()
                if sum(len(t) for t in pending) >= ROW_GROUP:
                    write(writer)
        if cols[0] or users == 0:
            flush()
        if pending:
            write(writer)
    return users


async def nodes_csv(rows: AsyncIterator[NodeRow], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NODE_COLUMNS)
    count = 0
    async for node in rows:
        values = list(_node_values(node))
        values[5] = int(node.truncated)
        values[6] = int(node.complete)
        values[8] = _time(node.collected_at)
        writer.writerow(["" if v is None else v for v in values])
        count += 1
    return count


async def nodes_jsonl(rows: AsyncIterator[NodeRow], out: TextIO) -> int:
    count = 0
    async for node in rows:
        values = list(_node_values(node))
        values[8] = _time(node.collected_at) or None
        out.write(json.dumps(dict(zip(NODE_COLUMNS, values, strict=True))) + "\n")
        count += 1
    return count


async def nodes_parquet(rows: AsyncIterator[NodeRow], out: BinaryIO) -> int:
    pa, pq = pyarrow_modules()
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("name", pa.string()),
            ("status", pa.string()),
            ("following_count", pa.int64()),
            ("friend_count", pa.int64()),
            ("truncated", pa.bool_()),
            ("complete", pa.bool_()),
            ("partition", pa.int32()),
            ("collected_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    buffer: list[tuple[Any, ...]] = []
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        async for node in rows:
            buffer.append(_node_values(node))
            count += 1
            if len(buffer) >= PARQUET_BATCH:
                writer.write_table(_columns(pa, buffer, schema))
                buffer.clear()
        if buffer or count == 0:
            writer.write_table(_columns(pa, buffer, schema))
    return count


def _columns(pa: Any, buffer: list[tuple[Any, ...]], schema: Any) -> Any:
    columns = list(zip(*buffer, strict=True)) if buffer else [() for _ in NODE_COLUMNS]
    arrays = [pa.array(col, field.type) for col, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


# -- whole graphs ---------------------------------------------------------------------

# Node attributes of both graph formats: (name, GraphML type, GEXF type).
_NODE_ATTRS = (
    ("name", "string", "string"),
    ("status", "string", "string"),
    ("following_count", "long", "long"),
    ("friend_count", "long", "long"),
    ("truncated", "boolean", "boolean"),
    ("complete", "boolean", "boolean"),
    ("partition", "int", "integer"),
    ("collected_at", "string", "string"),
)


def target_key(target: str, name: str) -> str:
    """A friend's node id in a graph file: its id, or its name when no id is known."""
    return target or f"name:{name}"


def _attr_values(node: NodeRow) -> Iterator[tuple[int, str]]:
    values = _node_values(node)[1:]
    for index, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, bool):
            yield index, "true" if value else "false"
        elif isinstance(value, datetime):
            yield index, value.isoformat()
        else:
            yield index, str(value)


async def graphml(
    nodes: AsyncIterator[NodeRow], edges: AsyncIterator[EdgeList], out: TextIO
) -> tuple[int, int]:
    """Write one directed GraphML graph: the job's users with attributes, then every edge.
    Friends outside the job are edge ends without a node element; readers (networkx,
    Gephi, Cytoscape) create them."""
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
    )
    for index, (name, kind, _g) in enumerate(_NODE_ATTRS):
        out.write(f'<key id="n{index}" for="node" attr.name="{name}" attr.type="{kind}"/>\n')
    out.write('<key id="e0" for="edge" attr.name="position" attr.type="int"/>\n')
    out.write('<key id="e1" for="edge" attr.name="platform" attr.type="string"/>\n')
    out.write('<graph id="friends" edgedefault="directed">\n')
    node_count = 0
    async for node in nodes:
        data = "".join(f'<data key="n{i}">{_text(v)}</data>' for i, v in _attr_values(node))
        out.write(f"<node id={quoteattr(node.user_id)}>{data}</node>\n")
        node_count += 1
    edge_count = 0
    async for e in edges:
        source = quoteattr(e.source_id)
        platform = f'<data key="e1">{_text(e.platform)}</data>'
        out.writelines(
            f"<edge source={source} target={quoteattr(target_key(t, name))}>"
            f'<data key="e0">{i}</data>{platform}</edge>\n'
            for i, (t, name) in enumerate(zip(e.targets, e.names, strict=True))
        )
        edge_count += len(e.names)
    out.write("</graph>\n</graphml>\n")
    return node_count, edge_count


async def gexf(
    nodes: AsyncIterator[NodeRow], edges: AsyncIterator[EdgeList], out: TextIO
) -> tuple[int, int]:
    """Write one directed GEXF 1.2 graph, nodes then edges (as GraphML above)."""
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gexf xmlns="http://www.gexf.net/1.2draft" version="1.2">\n'
        '<graph mode="static" defaultedgetype="directed">\n<attributes class="node">\n'
    )
    for index, (name, _m, kind) in enumerate(_NODE_ATTRS[1:], start=1):
        out.write(f'<attribute id="{index}" title="{name}" type="{kind}"/>\n')
    out.write("</attributes>\n<nodes>\n")
    node_count = 0
    async for node in nodes:
        values = "".join(
            f'<attvalue for="{i}" value={quoteattr(v)}/>' for i, v in _attr_values(node) if i
        )
        out.write(
            f"<node id={quoteattr(node.user_id)} label={quoteattr(node.name)}>"
            f"<attvalues>{values}</attvalues></node>\n"
        )
        node_count += 1
    out.write("</nodes>\n<edges>\n")
    edge_count = 0
    async for e in edges:
        source = quoteattr(e.source_id)
        start = edge_count
        out.writelines(
            f'<edge id="{start + i}" source={source} target={quoteattr(target_key(t, name))}/>\n'
            for i, (t, name) in enumerate(zip(e.targets, e.names, strict=True))
        )
        edge_count += len(e.names)
    out.write("</edges>\n</graph>\n</gexf>\n")
    return node_count, edge_count


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table_format(fmt: str | None, path: Path | None) -> str:
    """The table format asked with ``--as``, else the output's suffix, else CSV."""
    if fmt is not None:
        return fmt
    suffix = path.suffix.lower().lstrip(".") if path is not None else ""
    if suffix in TABLE_FORMATS:
        return suffix
    if suffix == "ndjson":
        return "jsonl"
    return "csv"
