"""The edges CSV and JSON lines writers give every value back as it was, whichever way a
user's lines are written (plain values by joined text, the others by the csv and json
modules): control characters, quotes, separators, non-ASCII text and empty targets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

from friendscrape.commands.graph_files import EDGE_COLUMNS, edges_csv, edges_jsonl
from friendscrape.stores.base import EdgeList

# One value of each kind that decides how a user's lines are written.
ODD = [
    "plain.bsky.social",
    "",  # no target: null in JSON lines, empty in CSV
    "tab\there",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\nend",
    "del\x7fchar",
    "unit\x1fsep",
    'quote"d',
    "comma,d",
    "back\\slash",
    "caf\u00e9",
    "line\u2028sep",
    "did:plc:abcdefghijklmnopqrstuvwx",
]


def _lists() -> list[EdgeList]:
    lists = [
        EdgeList("1", "plain", "bluesky", ["a", "b", "c"], ["did:plc:a", "", "h.b"], [1, 0, 1]),
        EdgeList("2", "", "x-api", ["x"], [""], [False]),
    ]
    # One user per odd value, as a target, as a name and as the user's own name.
    for i, odd in enumerate(ODD):
        lists.append(EdgeList(str(10 + i), odd, "bluesky", [odd, "n"], [odd, "t"], [True, False]))
        lists.append(EdgeList(str(50 + i), "s", "bluesky", ["n", "m"], ["t", odd], [True, True]))
    return lists


def _expected(lists: list[EdgeList]) -> list[dict[str, object]]:
    return [
        {
            "source_id": e.source_id,
            "target_id": target,
            "source_name": e.source_name,
            "target_name": name,
            "position": i,
            "platform": e.platform,
        }
        for e in lists
        for i, (target, name) in enumerate(zip(e.targets, e.names, strict=True))
    ]


async def _rows(lists: list[EdgeList]) -> AsyncIterator[EdgeList]:
    for e in lists:
        yield e


async def test_csv_gives_every_value_back() -> None:
    lists = _lists()
    out = io.StringIO()
    assert await edges_csv(_rows(lists), out) == len(lists)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    expected = [{k: str(v) for k, v in row.items()} for row in _expected(lists)]
    assert rows == expected
    assert out.getvalue().splitlines()[0] == ",".join(EDGE_COLUMNS)


async def test_json_lines_give_every_value_back() -> None:
    lists = _lists()
    out = io.StringIO()
    assert await edges_jsonl(_rows(lists), out) == len(lists)
    rows = [json.loads(line) for line in out.getvalue().split("\n") if line]
    expected = [{**row, "target_id": row["target_id"] or None} for row in _expected(lists)]
    assert rows == expected
