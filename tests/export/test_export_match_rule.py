"""The export's own match (``sqlite_match``) gives for every key the job's id SQLite's
rule gives (``sqlite_graph.RESOLVE_ONE``: id or non-empty name equal ignoring ASCII case,
the smallest id when several are), on awkward ids and names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from friendscrape.stores import sqlite_graph, sqlite_match

USERS = [
    ("b", "Ann"),
    ("a", "ann"),  # the same name ignoring case: the smaller id wins
    ("10", "bob"),
    ("9", "BOB"),  # "10" < "9" in text order
    ("É", "é"),  # non-ASCII: NOCASE folds ASCII letters only
    ("Zed", ""),  # an empty name matches nobody
    ("x\x00y", "nul\x00a"),  # SQLite compares up to a NUL, then by length
    ("cy", "a"),  # a name equal to another user's id
    ("q", ""),
]
PROBES = [
    "ann", "ANN", "Ann", "a", "A", "b", "bob", "Bob", "10", "9", "É", "é", "e", "zed",
    "ZED", "", "q\x00", "x\x00y", "X\x00z", "x\x00", "x", "nul\x00b", "NUL\x00a", "nul\x00ab",
    "cy", "CY", "nobody", "ß", "SS",
]  # fmt: skip


@pytest.mark.parametrize("with_nul", [True, False])
def test_the_export_matches_as_sqlite_does(tmp_path: Path, with_nul: bool) -> None:
    users = USERS if with_nul else [u for u in USERS if "\x00" not in u[0] + u[1]]
    db = tmp_path / "job.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE users (user_id TEXT PRIMARY KEY, screen_name TEXT)")
        conn.executemany("INSERT INTO users VALUES (?, ?)", users)
        conn.commit()
        expected = json.loads(sqlite_graph.resolve(conn, json.dumps(PROBES)))
        key_map = sqlite_match.KeyMap.of(conn)
    finally:
        conn.close()
    keys = key_map.get()
    assert [keys.ids.get(key) for key in keys.folded(PROBES)] == expected
    assert [keys.ids.get(next(iter(keys.folded([p])))) for p in PROBES] == expected
    targets, known = sqlite_match.match(PROBES, [""] * len(PROBES), key_map)
    assert known == [e is not None for e in expected]
    assert targets == [e or "" for e in expected]
