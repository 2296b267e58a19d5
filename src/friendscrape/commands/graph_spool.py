"""What a whole-graph export (GraphML, GEXF) holds back while it reads the edges.

Both formats list nodes before edges (networkx reads only the first ``<nodes>`` of a GEXF
file, and Gephi's readers expect a node before an edge naming it), but the friends
outside the job are known only once the edges are read. So the edges' text goes to a
temporary file and each friend outside the job, once, to a temporary SQLite database;
the nodes are then written, the job's users first, and the edges copied after them. Both
are on disk (the temporary folder, ``TMPDIR``): memory stays flat however many friends
there are.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TextIO

COPY_CHUNK = 1 << 20
"""Characters copied at a time from the spooled edges to the output."""


class GraphSpool:
    """The edges' text and the friends outside the job, on disk until the nodes are out."""

    def __init__(self) -> None:
        # Closed by __exit__: the spool is the context manager.
        self.edges: TextIO = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        # "" opens a private temporary database on disk, deleted when closed.
        self._db = sqlite3.connect("")
        self._db.executescript(
            "PRAGMA journal_mode = OFF;"
            "PRAGMA synchronous = OFF;"
            "PRAGMA cache_size = -32768;"
            "CREATE TABLE outside (key TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE job (key TEXT PRIMARY KEY) WITHOUT ROWID;"
        )

    def __enter__(self) -> GraphSpool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.edges.close()
        self._db.close()

    def outside_friends(
        self, targets: Sequence[str], names: Sequence[str], known: Sequence[bool]
    ) -> None:
        """Remember the friends of one list that are not users of the job (the first name
        seen for a key is its name)."""
        if all(known):
            return
        pairs = [(t, n) for t, n, k in zip(targets, names, known, strict=True) if not k]
        self._db.executemany("INSERT OR IGNORE INTO outside VALUES (?, ?)", pairs)

    def job_user(self, key: str) -> None:
        """Remember a user of the job written as a node: never written again as a friend."""
        self._db.execute("INSERT OR IGNORE INTO job VALUES (?)", (key,))

    def outside(self) -> Iterator[tuple[str, str]]:
        """Each friend outside the job (key, name) that is not a user of the job already
        written, in key order."""
        yield from self._db.execute(
            "SELECT key, name FROM outside WHERE key NOT IN (SELECT key FROM job) ORDER BY key"
        )

    def copy_edges(self, out: TextIO) -> None:
        """Write the spooled edges' text to ``out``."""
        self.edges.flush()
        self.edges.seek(0)
        shutil.copyfileobj(self.edges, out, COPY_CHUNK)
