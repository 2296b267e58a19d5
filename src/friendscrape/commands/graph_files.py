"""Writers of the graph exports: edge and node tables (CSV, JSON lines, Parquet) and whole
graphs (GraphML, GEXF), each written as rows stream in, never holding the graph.

Formats: GraphML http://graphml.graphdrawing.org/specification.html, GEXF 1.2
https://gexf.net/schema.html, Parquet https://parquet.apache.org/docs/file-format/.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from xml.sax.saxutils import quoteattr

from friendscrape import output_file
from friendscrape.commands.csv_rows import CsvRows
from friendscrape.commands.export_options import TABLE_FORMATS
from friendscrape.commands.graph_spool import GraphSpool
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
PARQUET_BATCH = 16_384
"""Edges (or nodes) buffered as Python values before they become Arrow columns."""
ROW_GROUP = 262_144
"""Edges per Parquet row group (at least: a user's list is not split). The writer keeps
every row group's metadata until it closes (some 4 KB each), so small groups make memory
grow with the file (32,768-row groups reached 377 MB at 550 million edges); gathered as
Arrow columns, this many edges of short names take some 15 MB."""
ROW_GROUP_BYTES = 10_000_000
"""Arrow bytes a row group gathers at most (at least one batch): lists of long names and
ids (Bluesky's handles and DIDs) took 31 MB for ROW_GROUP edges, which the peak added to
the some 180 MB that pyarrow and start-up hold; capped, a Bluesky group holds some
90,000 edges."""

ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"
ARROW_POOLS = ("jemalloc", "mimalloc", "system")
"""The allocators Arrow knows by name: any other makes pyarrow print its own warning."""

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
    """pyarrow and pyarrow.parquet, or one line naming the extra that installs them.

    Arrow allocates with jemalloc, not its default (mimalloc), unless the user chose an
    allocator (ARROW_DEFAULT_MEMORY_POOL): an export frees each batch's columns as soon
    as they are written; mimalloc kept more of those pages (100,000 Bluesky users'
    edges: peak RSS 186 MB, 163 MB with jemalloc) and the C library's allocator
    fragmented (259 MB)."""
    pool = os.environ.get(ARROW_POOL, "")
    chosen = bool(pool)  # set empty, as unset (a deploy's blank variable)
    if chosen and pool not in ARROW_POOLS:
        msg = (
            f"{ARROW_POOL} must name one of Arrow's allocators "
            f"({', '.join(ARROW_POOLS)}), not {pool!r}"
        )
        raise UsageError(msg)
    if not chosen:
        os.environ[ARROW_POOL] = "jemalloc"  # read when pyarrow is first imported
    try:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        msg = "Parquet needs pyarrow: pip install 'friendscrape[parquet]'"
        raise UsageError(msg) from None
    if not chosen:
        with contextlib.suppress(NotImplementedError):  # a build without jemalloc
            pa.set_memory_pool(pa.jemalloc_memory_pool())  # pyarrow was imported before
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


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _plain(values: str, specials: str) -> bool:
    """Whether ``values`` hold none of ``specials`` nor control characters: a user whose
    values are plain has its lines written without the csv or json modules."""
    if any(c in values for c in specials):
        return False
    if values.isascii():
        # str.isprintable looks each character up in the Unicode tables: on a Bluesky
        # user's DIDs and handles (some 28,000 characters) it was some 150 us, the
        # largest single cost of its edges CSV. Deleting the printable bytes leaves
        # nothing in a fraction of that.
        return not values.encode().translate(None, _PRINTABLE_ASCII)
    return values.isprintable()


def _line_ends(cache: dict[str, list[str]], end: str, n: int, form: str) -> list[str]:
    """``form`` (a position, then ``end``) for positions 0..n-1, kept per ``end``: most
    lines of an export differ only in their position."""
    made = cache.setdefault(end, [])
    if len(made) < n:
        made.extend(form.format(i, end) for i in range(len(made), max(n, 2 * len(made))))
    return made


def _lines(head: str, targets: list[str], mid: str, names: list[str], ends: list[str]) -> str:
    """Every line ``head target mid name end`` of one user, joined once (no string per
    line: a user's 550 lines cost one join)."""
    n = len(names)
    parts = [head] * (5 * n)
    parts[1::5] = targets
    parts[2::5] = [mid] * n
    parts[3::5] = names
    parts[4::5] = ends[:n]
    return "".join(parts)


async def edges_csv(rows: AsyncIterator[EdgeList], out: TextIO) -> int:
    writer = CsvRows(out)
    writer.writerow(EDGE_COLUMNS)
    users = 0
    ends: dict[str, list[str]] = {}
    async for e in rows:
        n = len(e.names)
        values = f"{e.source_id}{e.source_name}{e.platform}{''.join(e.targets)}"
        if _plain(values + "".join(e.names), '",'):
            tails = _line_ends(ends, e.platform, n, ",{0},{1}\n")
            out.write(_lines(f"{e.source_id},", e.targets, f",{e.source_name},", e.names, tails))
        else:
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


def _quoted(targets: list[str]) -> list[str]:
    """Plain targets (``_plain``: no quote, no line feed) as JSON, null where empty: quoted
    all at once and split again, in C (a formatted string per target was a fifth of a
    Bluesky user's JSON lines). Only an empty target makes two quotes in a row."""
    if not targets:
        return []
    return ('"' + '"\n"'.join(targets) + '"').replace('""', "null").split("\n")


async def edges_jsonl(rows: AsyncIterator[EdgeList], out: TextIO) -> int:
    users = 0
    ends: dict[str, list[str]] = {}
    plain_ends: dict[str, list[str]] = {}
    async for e in rows:
        n = len(e.names)
        head = f'{{"source_id":{_encode(e.source_id)},"target_id":'
        mid = f',"source_name":{_encode(e.source_name)},"target_name":'
        platform = _encode(e.platform)
        if _plain("".join(e.targets), '"\\'):
            targets = _quoted(e.targets)
        else:
            targets = [_encode(t) if t else "null" for t in e.targets]
        if _plain("".join(e.names), '"\\'):
            # Plain names: their quotes go in the text around them.
            tails = _line_ends(plain_ends, platform, n, '","position":{0},"platform":{1}}}\n')
            out.write(_lines(head, targets, f'{mid}"', e.names, tails))
        else:
            tails = _line_ends(ends, platform, n, ',"position":{0},"platform":{1}}}\n')
            out.write(_lines(head, targets, mid, [_encode(v) for v in e.names], tails))
        users += 1
    return users


class _EdgeBatch:
    """One row group of edges as Python lists: each user's values once, each edge's name
    and target; made into Arrow columns in C (users' values repeated by Arrow, not in
    Python per edge)."""

    def __init__(self) -> None:
        self.sources: list[str] = []
        self.source_names: list[str] = []
        self.platforms: list[str] = []
        self.starts: list[int] = []
        self.offsets: list[int] = [0]
        self.names: list[str] = []
        self.targets: list[str] = []

    def add(self, e: EdgeList) -> None:
        self.sources.append(e.source_id)
        self.source_names.append(e.source_name)
        self.platforms.append(e.platform)
        self.starts.append(len(self.names))
        self.names.extend(e.names)
        self.targets.extend(e.targets)
        self.offsets.append(len(self.names))

    def table(self, pa: Any, pc: Any, schema: Any, arange: Any) -> Any:
        """The batch as an Arrow table of ``schema`` (EDGE_COLUMNS); ``arange``: Arrow
        int32s 0, 1, 2... at least as many as the batch's edges."""
        names = _strings(pa, pc, self.names)
        # Each edge's user (its index in this batch), from the users' list offsets.
        parents = pc.list_parent_indices(pa.ListArray.from_arrays(_int32s(pa, self.offsets), names))
        # An empty target is a null: validity from the lengths (no scalar: pa.scalar()
        # imports pandas too, see _strings).
        known = _strings(pa, pc, self.targets)
        valid = pc.cast(pc.binary_length(known), pa.bool_())
        _, offsets, data = known.buffers()
        targets = pa.StringArray.from_buffers(len(known), offsets, data, valid.buffers()[1])
        positions = pc.subtract(
            arange.slice(0, len(self.names)), _int32s(pa, self.starts).take(parents)
        )
        platforms = _strings(pa, pc, self.platforms).dictionary_encode().take(parents)
        return pa.Table.from_arrays(
            [
                _strings(pa, pc, self.sources).take(parents),
                targets,
                _strings(pa, pc, self.source_names).take(parents),
                names,
                positions,
                platforms.cast(schema.field(5).type),
            ],
            schema=schema,
        )


# Arrow arrays made from buffers: pa.array() of a Python list imports pandas when it is
# installed (to ask whether the list is a pandas array), which took some 50 MB.


def _strings(pa: Any, pc: Any, values: list[str]) -> Any:
    """``values`` as an Arrow string array: joined by newlines and split by Arrow (no
    Python work per value) unless a value holds a newline."""
    if values:
        data = "\n".join(values).encode()
        whole = pa.StringArray.from_buffers(
            1, pa.py_buffer(array.array("i", [0, len(data)])), pa.py_buffer(data)
        )
        split = pc.split_pattern(whole, "\n").flatten()
        # A value that holds a newline splits into more: checked after, not counted before.
        if len(split) == len(values):
            return split
    encoded = [v.encode() for v in values]
    offsets = array.array("i", [0])
    offsets.extend(accumulate(map(len, encoded)))
    return pa.StringArray.from_buffers(
        len(values), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))
    )


def _int32s(pa: Any, values: Iterable[int]) -> Any:
    ints = array.array("i", values)
    return pa.Array.from_buffers(pa.int32(), len(ints), [None, pa.py_buffer(ints)])


async def edges_parquet(rows: AsyncIterator[EdgeList], out: BinaryIO) -> int:
    pa, pq = pyarrow_modules()
    pc = importlib.import_module("pyarrow.compute")
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
    users = 0
    batch = _EdgeBatch()
    group: list[Any] = []  # Arrow tables of the row group being gathered
    rows_in_group = group_bytes = 0

    arange = _int32s(pa, range(2 * PARQUET_BATCH))

    def convert() -> None:
        # Python strings become compact Arrow columns a few thousand edges at a time.
        nonlocal batch, rows_in_group, group_bytes, arange
        if len(arange) < len(batch.names):
            arange = _int32s(pa, range(len(batch.names)))
        table = batch.table(pa, pc, schema, arange)
        group.append(table)
        rows_in_group += len(batch.names)
        group_bytes += table.nbytes
        batch = _EdgeBatch()

    def write(writer: Any) -> None:
        nonlocal rows_in_group, group_bytes
        table = pa.concat_tables(group)
        group.clear()
        writer.write_table(table, row_group_size=max(rows_in_group, 1))
        rows_in_group = group_bytes = 0

    # Statistics (min/max per row group) only for source_id, the column readers filter
    # on: the writer holds every row group's metadata until it closes. Dictionaries only
    # for the columns that repeat within a row group: building one for the friends'
    # names and ids cost more time than it saved bytes.
    with pq.ParquetWriter(
        out,
        schema,
        compression="zstd",
        write_statistics=["source_id"],
        use_dictionary=["source_id", "source_name", "platform"],
    ) as writer:
        async for e in rows:
            batch.add(e)
            users += 1
            if len(batch.names) >= PARQUET_BATCH:
                convert()
                if rows_in_group >= ROW_GROUP or group_bytes >= ROW_GROUP_BYTES:
                    write(writer)
        if batch.names or users == 0:
            convert()
        if group:
            write(writer)
    return users


async def nodes_csv(rows: AsyncIterator[NodeRow], out: TextIO) -> int:
    writer = CsvRows(out)
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
    ("in_job", "boolean", "boolean"),
)
IN_JOB = len(_NODE_ATTRS) - 1
"""The index of ``in_job``: true for the job's users, false for the friends outside it
(which have no other attribute but their name)."""


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 allows nowhere, not even as references (&#0; is not well-formed):
C0 controls but tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF."""


def xml_safe(value: str) -> str:
    """``value`` with each character XML 1.0 forbids replaced by U+FFFD: whatever a store
    holds (an id or name with a NUL), a GraphML or GEXF file stays well-formed."""
    return _NOT_XML.sub("\ufffd", value)


def _xml_edges(e: EdgeList) -> EdgeList:
    """``e`` with its values made ``xml_safe``: checked once per user, rarely rebuilt."""
    values = f"{e.source_id}{e.source_name}{e.platform}{''.join(e.targets)}{''.join(e.names)}"
    if _NOT_XML.search(values) is None:
        return e
    return EdgeList(
        xml_safe(e.source_id),
        xml_safe(e.source_name),
        xml_safe(e.platform),
        [xml_safe(n) for n in e.names],
        [xml_safe(t) for t in e.targets],
        e.known,
    )


def target_key(target: str, name: str) -> str:
    """A friend's key: its id, or ``name:NAME`` when the platform gave no id (the legacy
    twitter-mobile site lists names only)."""
    return target or f"name:{name}"


def keyed(edges: EdgeList) -> EdgeList:
    """``edges`` with every target a key (``target_key``): no edge of an export has an
    empty end, so a table's id columns are never empty (a naive CSV load keeps them as
    they are) and a graph is whole."""
    if "" not in edges.targets:
        return edges
    return EdgeList(
        edges.source_id,
        edges.source_name,
        edges.platform,
        edges.names,
        [t or f"name:{n}" for t, n in zip(edges.targets, edges.names, strict=True)],
        edges.known,
    )


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
            yield index, xml_safe(str(value))


@dataclass(frozen=True, slots=True)
class GraphCounts:
    """What a whole-graph file holds: the job's users, the friends outside the job (both
    nodes), and the edges."""

    users: int
    outside: int
    edges: int


async def _spooled(
    edges: AsyncIterator[EdgeList], spool: GraphSpool, lines: Callable[[EdgeList, int], str]
) -> int:
    """Write every edge's ``lines`` (given the edges written before) to the spool, and
    remember the friends outside the job; returns the edges written."""
    count = 0
    async for listed in edges:
        e = _xml_edges(keyed(listed))
        spool.edges.write(lines(e, count))
        spool.outside_friends(e.targets, e.names, e.known)
        count += len(e.names)
    return count


def _graphml_edges(e: EdgeList, _before: int) -> str:
    source = quoteattr(e.source_id)
    platform = f'<data key="e1">{_text(e.platform)}</data>'
    return "".join(
        f'<edge source={source} target={quoteattr(t)}><data key="e0">{i}</data>{platform}</edge>\n'
        for i, t in enumerate(e.targets)
    )


def _gexf_edges(e: EdgeList, before: int) -> str:
    source = quoteattr(e.source_id)
    return "".join(
        f'<edge id="{before + i}" source={source} target={quoteattr(t)}/>\n'
        for i, t in enumerate(e.targets)
    )


async def graphml(
    nodes: AsyncIterator[NodeRow], edges: AsyncIterator[EdgeList], out: TextIO
) -> GraphCounts:
    """Write one directed GraphML graph: the job's users with every attribute and
    ``in_job`` true, the friends outside the job with their name and ``in_job`` false,
    then every edge."""
    with GraphSpool() as spool:
        edge_count = await _spooled(edges, spool, _graphml_edges)
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
        )
        for index, (name, kind, _g) in enumerate(_NODE_ATTRS):
            out.write(f'<key id="n{index}" for="node" attr.name="{name}" attr.type="{kind}"/>\n')
        out.write('<key id="e0" for="edge" attr.name="position" attr.type="int"/>\n')
        out.write('<key id="e1" for="edge" attr.name="platform" attr.type="string"/>\n')
        out.write('<graph id="friends" edgedefault="directed">\n')
        in_job = f'<data key="n{IN_JOB}">true</data>'
        users = 0
        async for node in nodes:
            key = xml_safe(node.user_id)
            data = "".join(f'<data key="n{i}">{_text(v)}</data>' for i, v in _attr_values(node))
            out.write(f"<node id={quoteattr(key)}>{data}{in_job}</node>\n")
            spool.job_user(key)
            users += 1
        outside = 0
        for key, name in spool.outside():
            out.write(
                f'<node id={quoteattr(key)}><data key="n0">{_text(name)}</data>'
                f'<data key="n{IN_JOB}">false</data></node>\n'
            )
            outside += 1
        spool.copy_edges(out)
    out.write("</graph>\n</graphml>\n")
    return GraphCounts(users, outside, edge_count)


async def gexf(
    nodes: AsyncIterator[NodeRow], edges: AsyncIterator[EdgeList], out: TextIO
) -> GraphCounts:
    """Write one directed GEXF 1.2 graph, nodes then edges (as GraphML above; a node's
    name is its label)."""
    with GraphSpool() as spool:
        edge_count = await _spooled(edges, spool, _gexf_edges)
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gexf xmlns="http://www.gexf.net/1.2draft" version="1.2">\n'
            '<graph mode="static" defaultedgetype="directed">\n<attributes class="node">\n'
        )
        for index, (name, _m, kind) in enumerate(_NODE_ATTRS[1:], start=1):
            out.write(f'<attribute id="{index}" title="{name}" type="{kind}"/>\n')
        out.write("</attributes>\n<nodes>\n")
        in_job = f'<attvalue for="{IN_JOB}" value="true"/>'
        users = 0
        async for node in nodes:
            key = xml_safe(node.user_id)
            values = "".join(
                f'<attvalue for="{i}" value={quoteattr(v)}/>' for i, v in _attr_values(node) if i
            )
            out.write(
                f"<node id={quoteattr(key)} label={quoteattr(xml_safe(node.name))}>"
                f"<attvalues>{values}{in_job}</attvalues></node>\n"
            )
            spool.job_user(key)
            users += 1
        outside = 0
        for key, name in spool.outside():
            out.write(
                f"<node id={quoteattr(key)} label={quoteattr(name)}><attvalues>"
                f'<attvalue for="{IN_JOB}" value="false"/></attvalues></node>\n'
            )
            outside += 1
        out.write("</nodes>\n<edges>\n")
        spool.copy_edges(out)
    out.write("</edges>\n</graph>\n</gexf>\n")
    return GraphCounts(users, outside, edge_count)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table_format(fmt: str | None, path: Path | None, what: str = "edges") -> str:
    """The table format asked with ``--as``, else the output's suffix (before the one
    naming its compression: ``edges.csv.gz`` is CSV), else (no suffix, or stdout) CSV.
    Any other suffix (``edges.xlsx``) is refused: it would hold CSV under its name."""
    if fmt is not None:
        return fmt
    suffix = output_file.suffix_of(path)
    if suffix == "ndjson":
        return "jsonl"
    output_file.check_suffix(
        path,
        f"export --format {what} writes CSV, JSON lines or Parquet",
        (*TABLE_FORMATS, "ndjson"),
        f"--as {'|'.join(TABLE_FORMATS)}",
    )
    return suffix or "csv"
