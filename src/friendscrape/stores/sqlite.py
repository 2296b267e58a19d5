"""The SQLite store: the embedded default, one file, WAL mode so readers never block the run.

This module opens the file (and creates its tables); the store's parts are by role:
``sqlite_base`` (the connection), ``sqlite_plan`` (users and plan), ``sqlite_runs``
(what a run reads and writes), ``sqlite_read`` (results, graph and figures). What is not
SQL (rows to records, paging, figures) is shared with BigQuery: ``rows``, ``paging``,
``figures``, ``planning``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from friendscrape.errors import StoreTransientError, StoreUnavailableError, UsageError
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores import sqlite_waves as waves
from friendscrape.stores.sqlite_base import table_names
from friendscrape.stores.sqlite_plan import SqlitePlan
from friendscrape.stores.sqlite_read import SqliteReads
from friendscrape.stores.sqlite_runs import SqliteRuns

if TYPE_CHECKING:
    from friendscrape.stores.config import SqliteConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    screen_name TEXT NOT NULL,
    following_count INTEGER,
    id_num INTEGER,            -- user_id as a number when numeric: plan order
    partition INTEGER,         -- set by the plan (1-based, as NTILE)
    seq INTEGER                -- position in plan order
);
CREATE INDEX IF NOT EXISTS users_partition_seq ON users (partition, seq);
CREATE TABLE IF NOT EXISTS resolved_ids (   -- account ids looked up for handles
    user_id TEXT PRIMARY KEY,
    resolved_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    partition INTEGER PRIMARY KEY,
    user_count INTEGER NOT NULL,
    min_user_id TEXT NOT NULL,
    max_user_id TEXT NOT NULL,
    planned_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_friends (
    user_id TEXT PRIMARY KEY,
    wave INTEGER NOT NULL DEFAULT 1, -- the wave of this result (each user's newest is here)
    list_hash INTEGER,              -- content hash of the list (stores.waves.list_hash)
    changed INTEGER,                -- 1: the list differs from the user's previous result's
    screen_name TEXT,
    friend_count INTEGER NOT NULL,
    friend_names TEXT NOT NULL,     -- in the upstream's order: a lists_codec blob, [] or
                                    -- (rows of older versions) JSON text
    friend_ids TEXT NOT NULL,       -- aligned with friend_names, or [] (the same forms)
    following_count INTEGER,
    truncated INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    source TEXT NOT NULL,
    partition INTEGER,
    attempts INTEGER NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS user_friends_partition ON user_friends (partition, status);
-- user order (numeric ids numerically): the order results and graph exports stream in
CREATE INDEX IF NOT EXISTS user_friends_order ON user_friends (length(user_id), user_id);
-- What status and report read, kept out of the wide rows: their scans read this index
-- alone instead of every friend list.
CREATE INDEX IF NOT EXISTS user_friends_figures
    ON user_friends (user_id, partition, status, friend_count, start_at, end_at);
-- What the report counts of lists and failures, kept small by holding only the rows
-- counted: failed users' errors, and ok lists truncated or shorter than the profile's count.
CREATE INDEX IF NOT EXISTS user_friends_failed
    ON user_friends (status, error) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS user_friends_lists
    ON user_friends (status, truncated, following_count, friend_count)
    WHERE status = 'ok' AND (truncated = 1 OR following_count > friend_count);
CREATE TABLE IF NOT EXISTS partition_leases (
    partition INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
-- What each run met, per interval (counts are deltas since the run's previous sample)
CREATE TABLE IF NOT EXISTS run_samples (
    run_id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    upstream_host TEXT NOT NULL,   -- host[:port] of the base URL, never a path or token
    simulated INTEGER NOT NULL,    -- 1: a loopback host (a local simulator)
    users_done INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    rate_limited INTEGER NOT NULL,
    paused_seconds REAL NOT NULL,
    learned_rate REAL,             -- requests/s, lowest over hosts and tokens; NULL: none
    final INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_samples_partition_at ON run_samples (partition, at);
"""

PAGE_SIZE = 65536
"""Bytes a page of a new store (a no-op for an existing one, which keeps its own). A
compact list is some 3.2 KB at the crawl's mean size and up to 14 KB, and a result row
goes on the last page while it fits, else on a new one: 16 KiB pages left some 730
bytes a result unused (4,450 bytes a result in all), 64 KiB pages some 180 (3,930), for
about the same CPU a save (benchmarks/storage_size.py). 4 KiB pages split lists over overflow
chains that cost about twice the CPU to write and checkpoint."""

CACHE_KIB = 8000
"""SQLite's page cache, in KiB, set once the page size is known. SQLite counts its
default (2,000 KiB) in pages of the size a connection opens with (4 KiB), and kept that
count of the store's 64 KiB pages: some 31 MB, which a run's saves filled page by page
(on x-api about 3 page faults a page collected, over its first 1,500 results or so).
8 MB holds what a save reads (the running totals look each result's user up in
``users``): with SQLite's 2 MB those pages were read again from the file, 0.18 reads
a page on x-api; with 8 MB none, for about one page fault a page more while it fills."""

# A file is a friendscrape store when it has these; partition_leases is newer and is
# created by the first run, so a store written by an older version still reads.
_CORE_TABLES = frozenset({"users", "partitions", "user_friends"})


def _beside(path: Path) -> tuple[Path, Path, bool]:
    """The store's write-ahead log and its index, and whether this process may create
    files in the store's folder (False on a read-only folder or file system)."""
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    return wal, shm, os.access(path.parent, os.W_OK)


def _unchanging(path: Path) -> bool:
    """Whether a read may skip SQLite's shared-memory index (``immutable``): a WAL store
    is read through ``-shm``, which a folder this process cannot write cannot hold, so a
    plain read-only open fails there. Safe when no write-ahead log (or an empty one) is
    beside the file: a writer keeps one for as long as it is connected, so none is mid-way,
    and nothing in a log is missed. (A writer of another account that starts while this
    command reads is not seen; status and export of such a folder are snapshots.)"""
    wal, _shm, writable = _beside(path)
    if writable:
        return False
    try:
        return wal.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _unreadable_why(path: Path) -> str | None:
    """Why SQLite could not read a store it could open, in words; None if unknown."""
    wal, shm, writable = _beside(path)
    for name in (wal, shm):
        if name.exists() and not os.access(name, os.R_OK):
            return f"{name.name} beside it cannot be read (permission denied)"
    if not writable and wal.exists() and not shm.exists():
        return (
            f"its write-ahead log {wal.name} holds changes not yet in the file, and SQLite "
            f"cannot create the {shm.name} index it reads them through in a read-only "
            "folder: make the folder writable, or copy the store with both files somewhere "
            "writable"
        )
    if not writable:
        return (
            "the folder is read-only and SQLite cannot create the -wal/-shm files it reads "
            "a WAL store through: make the folder writable"
        )
    return None


def _held_by_another(exc: sqlite3.DatabaseError) -> bool:
    """Whether ``exc`` is another connection's lock (SQLITE_BUSY, SQLITE_LOCKED), which
    passes once it lets go."""
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return code & 0xFF in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def _absolute_hint(path: Path) -> str:
    """For ``sqlite:///data/x.db`` (read as the relative data/x.db, whose folder is missing)
    when /data exists: the URL of the absolute path, with its four slashes."""
    if path.is_absolute() or not (Path("/") / path).parent.is_dir():
        return ""
    return f"; for the absolute path /{path} write sqlite:////{path}"


class SqliteStore(SqlitePlan, SqliteRuns, SqliteReads, waves.SqliteWaves):
    """A Store in one SQLite file; calls run in a worker thread, one at a time."""

    @classmethod
    def from_url(
        cls,
        url: str,
        config: SqliteConfig | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
    ) -> SqliteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            msg = f"malformed SQLite store URL {url!r}: use sqlite:///PATH (e.g. sqlite:///friendscrape.db)"
            raise UsageError(msg)
        path = url[len(prefix) :]
        if path == ":memory:":
            # An in-memory database vanishes with the process: an import would report
            # users added and keep none, and every run would see an empty store.
            msg = (
                f"store URL {url!r} names an in-memory SQLite database, which keeps "
                "nothing between commands: use sqlite:///PATH to a file"
            )
            raise UsageError(msg)
        # SQLite's own wait for a lock ends well inside the pipeline's write timeout, so a
        # held lock is reported as "database is locked" (retried), not as a timeout.
        busy = min(config.write_timeout / 2, 5.0) if config is not None else 5.0
        return cls(Path(path), busy_timeout=busy, create=create, read_only=read_only)

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_dir():
            msg = f"cannot open SQLite store {str(self.path)!r}: it is a directory"
            raise StoreUnavailableError(msg)
        if not self.path.parent.exists():
            msg = f"cannot open SQLite store {str(self.path)!r}: folder does not exist"
            raise StoreUnavailableError(msg + _absolute_hint(self.path))
        if not self._create and not self.path.exists():
            msg = (
                f"no SQLite store at {str(self.path)!r} (no users imported yet: run "
                "'friendscrape users import FILE' first, or check --store)"
            )
            raise StoreUnavailableError(msg)
        if self._read_only:
            return self._connect_read_only()
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                check_same_thread=False,
                isolation_level=None,
            )
            conn.row_factory = sqlite3.Row
            self._require_store_or_empty(conn)
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # A row a REPLACE deletes is taken out of the totals as a DELETE is.
            conn.execute("PRAGMA recursive_triggers=ON")
            conn.executescript(_SCHEMA)
            graph.migrate(conn)
            waves.migrate(conn)
            self._keeps_totals = totals.migrate(conn)
            graph.register(conn)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            msg = f"cannot open SQLite store {str(self.path)!r}: {exc}"
            if _held_by_another(exc):
                # Opening to write takes the write lock for a moment (the schema's
                # checks): another process holding it longer than SQLite waits (an
                # import, a recount, a stopped worker) is worth waiting for, not an end.
                msg += " (another process is writing to it)"
                raise StoreTransientError(msg) from None
            raise StoreUnavailableError(msg) from None
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open without writing a byte: no journal mode switch, no tables created."""
        if not os.access(self.path, os.R_OK):
            msg = f"cannot open SQLite store {str(self.path)!r} for reading: permission denied"
            raise StoreUnavailableError(msg)
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        if _unchanging(self.path):
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self._busy_timeout,
                check_same_thread=False,
                isolation_level=None,
            )
        except sqlite3.DatabaseError as exc:
            msg = f"cannot open SQLite store {str(self.path)!r} read-only: {exc}"
            raise StoreUnavailableError(msg) from None
        conn.row_factory = sqlite3.Row
        graph.register(conn)
        try:
            tables = table_names(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            code = getattr(exc, "sqlite_errorcode", None) or 0
            if code & 0xFF in {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}:
                # The file is a database: what it needs beside it cannot be made or read.
                msg = (
                    f"cannot open SQLite store {str(self.path)!r} for reading: "
                    f"{_unreadable_why(self.path) or exc}"
                )
            else:
                msg = f"{str(self.path)!r} is not a friendscrape store: {exc}"
            raise StoreUnavailableError(msg) from None
        if not tables >= _CORE_TABLES:
            conn.close()
            raise self._foreign_store(tables)
        return conn

    def _require_store_or_empty(self, conn: sqlite3.Connection) -> None:
        """A file holding another program's tables is not ours to add tables to."""
        tables = table_names(conn)
        if tables and not tables >= _CORE_TABLES:
            conn.close()
            raise self._foreign_store(tables)

    def _foreign_store(self, tables: set[str]) -> StoreUnavailableError:
        missing = ", ".join(sorted(_CORE_TABLES - tables))
        msg = (
            f"{str(self.path)!r} is not a friendscrape store (no {missing} table"
            f"{'s' if len(_CORE_TABLES - tables) > 1 else ''}): check --store"
        )
        return StoreUnavailableError(msg)

    async def open(self) -> None:
        if self._conn is None:
            try:
                self._conn = await self._in_thread(self._connect)
            except BaseException:
                self._stop_thread()
                raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                try:
                    await self._in_thread(self._matcher.close)
                    await self._in_thread(conn.close)
                finally:
                    self._stop_thread()
