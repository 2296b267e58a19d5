"""The SQLite store: the embedded default, one file, WAL mode so readers never block the run."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from friendscrape.errors import StoreError, StoreTransientError, StoreUnavailableError, UsageError
from friendscrape.models import FriendList, Partition, User, UserPage, utc
from friendscrape.stores import figures, paging, planning, rows
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores.base import (
    Again,
    EdgeList,
    ImportResult,
    Lease,
    LeaseHolder,
    ListCounts,
    NodeRow,
    RunSample,
    SampleBucket,
    StatusRow,
    StatusSummary,
    now_utc,
)
from friendscrape.stores.planning import numeric_id, sort_key
from friendscrape.stores.sqlite_keys import SaveMatcher

if TYPE_CHECKING:
    from friendscrape.config import Settings

T = TypeVar("T")

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
    screen_name TEXT,
    friend_count INTEGER NOT NULL,
    friend_names TEXT NOT NULL,     -- JSON list, in the upstream's order
    friend_ids TEXT NOT NULL,       -- JSON list aligned with friend_names, or []
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

# A file is a friendscrape store when it has these; partition_leases is newer and is
# created by the first run, so a store written by an older version still reads.
_CORE_TABLES = frozenset({"users", "partitions", "user_friends"})

_ORDER = "id_num IS NULL, id_num, user_id"

_PAGE = 500
"""Rows fetched per call by the streaming reads (results, edges, nodes)."""

_UPSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_ROWS = 50
"""Results written per statement: 800 parameters, under the oldest SQLite's 999."""
_UPSERT = """
INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names, friend_ids,
    following_count, truncated, status, error, source, partition, attempts, start_at, end_at,
    friend_keys, keys_gen)
VALUES {rows}
ON CONFLICT (user_id) DO UPDATE SET
    screen_name = excluded.screen_name, friend_count = excluded.friend_count,
    friend_names = excluded.friend_names, friend_ids = excluded.friend_ids,
    following_count = excluded.following_count, truncated = excluded.truncated,
    status = excluded.status, error = excluded.error, source = excluded.source,
    partition = excluded.partition, attempts = user_friends.attempts + excluded.attempts,
    start_at = excluded.start_at, end_at = excluded.end_at,
    friend_keys = excluded.friend_keys, keys_gen = excluded.keys_gen
"""

_RESULT_COLUMNS = (
    "user_id, screen_name, status, source, partition, start_at, end_at, friend_names, "
    "friend_ids, following_count, truncated, error, attempts"
)


@functools.cache
def _upsert(rows: int) -> str:
    """The upsert of ``rows`` results in one statement."""
    return _UPSERT.format(rows=", ".join([_UPSERT_ROW] * rows))


def _upsert_all(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Write ``rows`` (in order: a user twice is updated by the later row, as one by one)
    with one statement per ``_UPSERT_ROWS``, not one per result. Each statement lets go
    of the GIL and takes it back from the busy event loop, and a row a statement cost
    about two thread switches and a third of the store's CPU per result."""
    for start in range(0, len(rows), _UPSERT_ROWS):
        chunk = rows[start : start + _UPSERT_ROWS]
        conn.execute(_upsert(len(chunk)), [value for row in chunk for value in row])


def _json_list(values: Sequence[str]) -> str:
    """A list of names or ids as its JSON text (UTF-8 kept, not escaped), as the columns
    hold it. msgspec writes it several times faster than json.dumps: a page of 1,000
    names and ids is saved with every fetch, and json.dumps cost about a tenth of the
    collector's CPU on x-api."""
    return msgspec.json.encode(values).decode()


def _to_sql(moment: datetime) -> str:
    """A time as this store keeps it: ISO 8601 UTC text, which sorts as time does."""
    return utc(moment).isoformat(timespec="microseconds")


def _from_sql(text: str) -> datetime:
    """A stored time back as an aware UTC datetime."""
    return utc(datetime.fromisoformat(text))


def _classify(exc: sqlite3.Error, action: str) -> StoreError:
    """Locks and I/O hiccups may pass; anything else is a real failure."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "disk I/O" in text
    ):
        return StoreTransientError(f"sqlite {action} failed: {text}")
    return StoreError(f"sqlite {action} failed: {text}")


class SqliteStore:
    """A Store in one SQLite file; calls run in a worker thread, one at a time."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self._create = create and not read_only
        self._read_only = read_only
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._matcher = SaveMatcher()  # this connection's filter of the job's keys

    @classmethod
    def from_url(
        cls,
        url: str,
        settings: Settings | None = None,
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
        busy = min(settings.write_timeout / 2, 5.0) if settings is not None else 5.0
        return cls(Path(path), busy_timeout=busy, create=create, read_only=read_only)

    # -- plumbing ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_dir():
            msg = f"cannot open SQLite store {str(self.path)!r}: it is a directory"
            raise StoreUnavailableError(msg)
        if not self.path.parent.exists():
            msg = f"cannot open SQLite store {str(self.path)!r}: folder does not exist"
            raise StoreUnavailableError(msg)
        if not self._create and not self.path.exists():
            msg = (
                f"no SQLite store at {str(self.path)!r} (no users imported yet: run "
                "'friendscrape users import FILE' first, or check --store)"
            )
            raise StoreUnavailableError(msg)
        if self._read_only:
            return self._connect_read_only()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                check_same_thread=False,
                isolation_level=None,
            )
            conn.row_factory = sqlite3.Row
            self._require_store_or_empty(conn)
            # Pages of 16 KiB for a new store (a no-op for an existing one): a friend list
            # is some 10-30 KB of JSON, which 4 KiB pages split over overflow chains that
            # cost about twice the CPU to write and checkpoint.
            conn.execute("PRAGMA page_size=16384")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            graph.migrate(conn)
        except sqlite3.DatabaseError as exc:
            msg = f"cannot open SQLite store {str(self.path)!r}: {exc}"
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
        try:
            tables = _table_names(conn)
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
        tables = _table_names(conn)
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

    async def _call(self, action: str, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            msg = "store is not open"
            raise StoreError(msg)
        conn = self._conn

        def guarded() -> T:
            try:
                return func(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise _classify(exc, action) from None

        await self._lock.acquire()
        # The thread cannot be stopped, so a caller that gives up (write timeout,
        # shutdown) must not let the next call onto the connection while it still runs:
        # the lock is released when the thread ends, not when the caller stops waiting.
        work = asyncio.ensure_future(asyncio.to_thread(guarded))
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _finished(self, work: asyncio.Future[Any]) -> None:
        self._lock.release()
        if not work.cancelled():
            work.exception()  # retrieved here too when the caller stopped waiting

    async def open(self) -> None:
        if self._conn is None:
            self._conn = await asyncio.to_thread(self._connect)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await asyncio.to_thread(conn.close)

    # -- users and plan ---------------------------------------------------------------

    async def import_users(self, users: Sequence[User]) -> ImportResult:
        rows = [(u.user_id, u.screen_name, u.following_count, numeric_id(u.user_id)) for u in users]

        def run(conn: sqlite3.Connection) -> ImportResult:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            changes_before = conn.total_changes
            conn.executemany(
                """INSERT INTO users (user_id, screen_name, following_count, id_num)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (user_id) DO UPDATE SET
                       screen_name = excluded.screen_name,
                       following_count = COALESCE(excluded.following_count, users.following_count)
                   WHERE users.screen_name IS NOT excluded.screen_name
                      OR (excluded.following_count IS NOT NULL
                          AND users.following_count IS NOT excluded.following_count)""",
                rows,
            )
            touched = conn.total_changes - changes_before
            if touched:
                graph.keys_changed(conn)  # lists resolved before are resolved again
            after = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            conn.execute("COMMIT")
            added = after - before
            return ImportResult(read=len(rows), added=added, updated=touched - added)

        return await self._call("import", run)

    async def import_stream(
        self, batches: Iterable[Sequence[User]], *, again: Again[Any]
    ) -> ImportResult:
        """Stage every batch in a temporary table (on disk, not in memory), then upsert
        each user's last row in one transaction, in user_id order: the key index then
        grows at its end instead of at random places, so a large import does not slow."""
        await again("import", lambda: self._call("import", _stage_reset))
        for batch in batches:
            rows = [
                (u.user_id, u.screen_name, u.following_count, numeric_id(u.user_id)) for u in batch
            ]
            # Staging appends, so a retried batch would repeat its rows: no retry here; a
            # failed import is run again (re-importing is safe).
            await self._call("import", _stage(rows))
        result: ImportResult = await again("import", lambda: self._call("import", _merge_staged))
        return result

    async def user_count(self) -> int:
        return await self._call(
            "count", lambda c: int(c.execute("SELECT COUNT(*) FROM users").fetchone()[0])
        )

    async def result_count(self) -> int:
        return await self._call(
            "count", lambda c: int(c.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0])
        )

    async def plan_partitions(self, count: int) -> list[Partition]:
        planning.check_count(count)
        planned_at = _to_sql(datetime.now(UTC))

        def run(conn: sqlite3.Connection) -> list[Partition]:
            conn.execute("BEGIN IMMEDIATE")
            total = int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])
            # Each user's plan position, keyed by rowid: the update below then finds
            # rows by integer key instead of looking every user_id up in the text index.
            conn.execute("DROP TABLE IF EXISTS temp.plan_order")
            conn.execute("CREATE TEMP TABLE plan_order (rid INTEGER PRIMARY KEY, seq INTEGER)")
            conn.execute(
                f"""INSERT INTO temp.plan_order (rid, seq)
                    SELECT rid, seq FROM (
                        SELECT rowid AS rid, ROW_NUMBER() OVER (ORDER BY {_ORDER}) AS seq
                        FROM users)
                    ORDER BY rid"""
            )
            # NTILE(count) from the position alone: the first (total % count) partitions
            # hold one user more than the others.
            size, bigger = divmod(total, count)
            conn.execute(
                """UPDATE users SET seq = p.seq, partition = CASE
                       WHEN p.seq <= :bigger * (:size + 1) THEN (p.seq - 1) / (:size + 1) + 1
                       ELSE :bigger + (p.seq - 1 - :bigger * (:size + 1)) / :size + 1 END
                   FROM temp.plan_order AS p WHERE p.rid = users.rowid""",
                {"size": size, "bigger": bigger},
            )
            conn.execute("DROP TABLE temp.plan_order")
            conn.execute("DELETE FROM partitions")
            lo = 1
            for number in range(1, min(count, total) + 1):
                users = size + 1 if number <= bigger else size
                hi = lo + users - 1
                ends = [
                    conn.execute(
                        "SELECT user_id FROM users WHERE partition = ? AND seq = ?",
                        (number, at),
                    ).fetchone()[0]
                    for at in (lo, hi)
                ]
                conn.execute(
                    """INSERT INTO partitions (partition, user_count, min_user_id, max_user_id,
                                               planned_at) VALUES (?, ?, ?, ?, ?)""",
                    (number, users, ends[0], ends[1], planned_at),
                )
                lo = hi + 1
            graph.index_keys(conn)  # lists are resolved at save from now on
            conn.execute("COMMIT")
            return _read_partitions(conn)

        return await self._call("plan", run)

    async def partitions(self) -> list[Partition]:
        return await self._call("read plan", _read_partitions)

    async def unplaced_count(self) -> int:
        return await self._call(
            "count unplaced",
            lambda c: int(
                c.execute(
                    """SELECT COUNT(*) FROM users
                       WHERE partition IS NULL AND EXISTS (SELECT 1 FROM partitions)"""
                ).fetchone()[0]
            ),
        )

    async def place_unplaced(self) -> dict[int, int]:
        def run(conn: sqlite3.Connection) -> dict[int, int]:
            conn.execute("BEGIN IMMEDIATE")
            plan = _read_partitions(conn)
            ids = [r[0] for r in conn.execute("SELECT user_id FROM users WHERE partition IS NULL")]
            last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM users").fetchone()[0])
            placed = planning.placements(ids, plan, last)
            if not placed:
                conn.execute("ROLLBACK")
                return {}
            conn.executemany(
                "UPDATE users SET partition = ?, seq = ? WHERE user_id = ?",
                [(p.partition, p.position, p.user_id) for p in placed],
            )
            counts = planning.placed_counts(placed)
            for part in plan:
                added = [p.user_id for p in placed if p.partition == part.number]
                if not added:
                    continue
                ends = [part.min_user_id, part.max_user_id, *added]
                conn.execute(
                    """UPDATE partitions SET user_count = user_count + ?,
                           min_user_id = ?, max_user_id = ? WHERE partition = ?""",
                    (len(added), min(ends, key=sort_key), max(ends, key=sort_key), part.number),
                )
            conn.execute("COMMIT")
            return counts

        return await self._call("place users", run)

    async def pending_users(
        self, partition: int, *, retry_failed: bool, cursor: str | None, limit: int
    ) -> UserPage:
        after = paging.cursor_after(cursor)

        def run(conn: sqlite3.Connection) -> UserPage:
            found = conn.execute(
                """SELECT u.user_id, u.screen_name, u.following_count, u.seq AS position,
                          r.resolved_id
                   FROM users u
                   LEFT JOIN user_friends f ON f.user_id = u.user_id
                   LEFT JOIN resolved_ids r ON r.user_id = u.user_id
                   WHERE u.partition = ? AND u.seq > ?
                     AND (f.user_id IS NULL OR (? AND f.status = 'failed'))
                   ORDER BY u.seq LIMIT ?""",
                (partition, after, retry_failed, limit),
            ).fetchall()
            return paging.user_page(found, limit)

        return await self._call("read users", run)

    async def save_resolved(self, ids: Mapping[str, str]) -> None:
        rows = list(ids.items())

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                """INSERT INTO resolved_ids (user_id, resolved_id) VALUES (?, ?)
                   ON CONFLICT (user_id) DO UPDATE SET resolved_id = excluded.resolved_id""",
                rows,
            )
            conn.execute("COMMIT")

        if rows:
            await self._call("save looked-up ids", run)

    async def pending_count(self, partition: int, *, retry_failed: bool) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                """SELECT COUNT(*) FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
                   WHERE u.partition = ? AND (f.user_id IS NULL OR (? AND f.status = 'failed'))""",
                (partition, retry_failed),
            ).fetchone()
            return int(row[0])

        return await self._call("count pending", run)

    # -- leases -----------------------------------------------------------------------

    async def acquire_lease(self, lease: Lease) -> None:
        def run(conn: sqlite3.Connection) -> tuple[LeaseHolder | None, datetime]:
            # One IMMEDIATE transaction: the check and the take cannot interleave with
            # another run's, so exactly one of two simultaneous runs gets the lease.
            conn.execute("BEGIN IMMEDIATE")
            now = now_utc()
            holder = _holder(
                conn.execute(
                    "SELECT host, pid, run_id, acquired_at, expires_at FROM partition_leases"
                    " WHERE partition = ?",
                    (lease.partition,),
                ).fetchone()
            )
            if holder is not None and holder.run_id != lease.run_id and not holder.gone(now):
                conn.execute("ROLLBACK")
                return holder, now
            conn.execute(
                """INSERT INTO partition_leases
                       (partition, host, pid, run_id, acquired_at, heartbeat_at, expires_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (partition) DO UPDATE SET host = excluded.host,
                       pid = excluded.pid, run_id = excluded.run_id,
                       acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at,
                       expires_at = excluded.expires_at""",
                (
                    lease.partition,
                    lease.host,
                    lease.pid,
                    lease.run_id,
                    _to_sql(now),
                    _to_sql(now),
                    _to_sql(lease.expires(now)),
                ),
            )
            conn.execute("COMMIT")
            return None, now

        holder, now = await self._call("take lease", run)
        if holder is not None:
            raise holder.held_error(lease.partition, now)

    async def leases(self) -> dict[int, LeaseHolder]:
        def run(conn: sqlite3.Connection) -> dict[int, LeaseHolder]:
            if "partition_leases" not in _table_names(conn):
                return {}  # a store of an older version, opened read-only
            return rows.leases(
                conn.execute(
                    "SELECT partition AS part, host, pid, run_id, acquired_at, expires_at"
                    " FROM partition_leases ORDER BY partition"
                )
            )

        return await self._call("read leases", run)

    async def renew_lease(self, lease: Lease) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = now_utc()
            cursor = conn.execute(
                """UPDATE partition_leases SET heartbeat_at = ?, expires_at = ?
                   WHERE partition = ? AND run_id = ?""",
                (_to_sql(now), _to_sql(lease.expires(now)), lease.partition, lease.run_id),
            )
            return cursor.rowcount == 1

        return await self._call("renew lease", run)

    async def release_lease(self, lease: Lease) -> None:
        await self._call(
            "release lease",
            lambda c: c.execute(
                "DELETE FROM partition_leases WHERE partition = ? AND run_id = ?",
                (lease.partition, lease.run_id),
            ),
        )

    # -- run samples ------------------------------------------------------------------

    async def record_sample(self, sample: RunSample) -> None:
        row = tuple(_sql_value(v) for v in rows.sample_values(sample).values())
        await self._call(
            "record sample",
            lambda c: c.execute(
                f"INSERT INTO run_samples ({_SAMPLE_COLUMNS}) VALUES ({_SAMPLE_MARKS})", row
            ),
        )

    async def latest_samples(self) -> dict[int, RunSample]:
        def run(conn: sqlite3.Connection) -> dict[int, RunSample]:
            if "run_samples" not in _table_names(conn):
                return {}  # a store of an older version, opened read-only
            found = conn.execute(
                f"""SELECT {_SAMPLE_COLUMNS} FROM (
                        SELECT *, ROW_NUMBER() OVER (
                            PARTITION BY partition ORDER BY at DESC, final DESC, rowid DESC
                        ) AS n FROM run_samples)
                    WHERE n = 1 ORDER BY partition"""
            ).fetchall()
            return {int(r["partition"]): rows.run_sample(r) for r in found}

        return await self._call("read samples", run)

    async def sample_buckets(
        self, bucket_seconds: int, *, since: datetime | None = None
    ) -> list[SampleBucket]:
        width = figures.at_least_one(bucket_seconds)
        since_sql = _to_sql(since) if since is not None else ""

        def run(conn: sqlite3.Connection) -> list[SampleBucket]:
            if "run_samples" not in _table_names(conn):
                return []
            found = conn.execute(
                """SELECT CAST(strftime('%s', at) AS INTEGER) / ? AS b, partition AS part,
                          SUM(users_done) AS users_done, SUM(pages) AS pages,
                          SUM(rate_limited) AS rate_limited,
                          SUM(paused_seconds) AS paused_seconds,
                          MIN(learned_rate) AS learned_rate, COUNT(*) AS samples
                   FROM run_samples WHERE at >= ?
                   GROUP BY b, partition ORDER BY b, partition""",
                (width, since_sql),
            ).fetchall()
            return [figures.sample_bucket(r, width) for r in found]

        return await self._call("read samples", run)

    # -- results ----------------------------------------------------------------------

    async def save(self, results: Sequence[FriendList]) -> None:
        rows = [
            (
                r.user_id,
                r.screen_name,
                r.friend_count,
                _json_list(r.friend_names),
                _json_list(r.friend_ids),
                r.following_count,
                int(r.truncated),
                r.status.value,
                r.error,
                r.source,
                r.partition,
                r.attempts,
                _to_sql(r.start_at),
                _to_sql(r.end_at),
            )
            for r in results
        ]

        lists = [(row[3], row[4]) for row in rows]
        matcher = self._matcher

        def run(conn: sqlite3.Connection) -> None:
            matcher.prepare(conn, lists)
            conn.execute("BEGIN IMMEDIATE")
            # Each list's targets resolved now, against the job's users, once.
            keys = matcher.resolved_keys(conn, lists, [r.friend_names for r in results])
            _upsert_all(conn, [row + k for row, k in zip(rows, keys, strict=True)])
            conn.execute("COMMIT")

        await self._call("write", run)

    async def _stream(
        self,
        action: str,
        sql: str,
        params: dict[str, Any] | tuple[Any, ...] = (),
        prepare: Callable[[sqlite3.Connection], None] | None = None,
        page: int = _PAGE,
    ) -> AsyncIterator[sqlite3.Row]:
        """Rows of one statement read in one pass, a page at a time, the next page read
        while the caller handles this one. ``sql`` may hold ``{order}``: the user order
        (numeric ids numerically) where the store has its index, else id text order (a
        store of an older version opened read-only), never a sort of the whole table."""

        def start(conn: sqlite3.Connection) -> sqlite3.Cursor:
            if prepare is not None:
                prepare(conn)
            indexed = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'user_friends_order'"
            ).fetchone()
            order = "length(user_id), user_id" if indexed else "user_id"
            return conn.execute(sql.format(order=order), params)

        cursor = await self._call(action, start)

        async def fetch() -> list[sqlite3.Row]:
            return await self._call(action, lambda _c: cursor.fetchmany(page))

        try:
            async with contextlib.aclosing(paging.read_ahead(fetch)) as streamed:
                async for row in streamed:
                    yield row
        finally:
            # An abandoned export may be finalised after the store closed its connection.
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()

    async def results(self) -> AsyncIterator[FriendList]:
        sql = f"SELECT {_RESULT_COLUMNS} FROM user_friends ORDER BY {{order}}"
        async for row in self._stream("read results", sql):
            yield rows.friend_list(row)

    async def edge_lists(self, *, partition: int | None = None) -> AsyncIterator[EdgeList]:
        sql, params = await self._call("read edges", graph.edges_query)
        params = {**params, "part": partition}
        async for row in self._stream("read edges", sql, params, page=graph.EDGE_PAGE):
            yield graph.edge_list(row)

    async def nodes(self, *, partition: int | None = None) -> AsyncIterator[NodeRow]:
        async for row in self._stream("read nodes", graph.NODES_SQL, {"part": partition}):
            yield rows.node_row(row)

    async def status_rows(self) -> list[StatusRow]:
        def run(conn: sqlite3.Connection) -> list[StatusRow]:
            found = conn.execute(
                """SELECT f.user_id, COALESCE(u.partition, f.partition, 0) AS part,
                          f.status, f.friend_count, f.start_at, f.end_at
                   FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id"""
            ).fetchall()
            return [figures.status_row(r) for r in found]

        return await self._call("read status", run)

    async def finished_counts(self, *, bucket: int) -> list[tuple[int, int, int]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, int, int]]:
            found = conn.execute(
                """SELECT COALESCE(u.partition, f.partition, 0) AS part,
                          CAST(strftime('%s', f.end_at) AS INTEGER) / ? AS b, COUNT(*) AS n
                   FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
                   GROUP BY part, b ORDER BY part, b""",
                (figures.at_least_one(bucket),),
            ).fetchall()
            return figures.finished_counts(found)

        return await self._call("read figures", run)

    async def friend_histogram(self, *, bins: int) -> tuple[int, list[tuple[int, int]]]:
        def run(conn: sqlite3.Connection) -> tuple[int, list[tuple[int, int]]]:
            top = conn.execute(
                "SELECT MAX(friend_count) FROM user_friends WHERE status = 'ok'"
            ).fetchone()[0]
            if top is None:
                return 1, []
            width = figures.bin_width(int(top), bins)
            found = conn.execute(
                """SELECT friend_count / ? AS b, COUNT(*) AS n FROM user_friends
                   WHERE status = 'ok' GROUP BY b ORDER BY b""",
                (width,),
            ).fetchall()
            return width, figures.bins(found)

        return await self._call("read figures", run)

    async def list_counts(self) -> ListCounts:
        def run(conn: sqlite3.Connection) -> ListCounts:
            ok = conn.execute("SELECT COUNT(*) FROM user_friends WHERE status = 'ok'").fetchone()
            # The WHERE repeats the partial index's own, so only its rows are read.
            row = conn.execute(
                """SELECT COALESCE(SUM(truncated = 1), 0),
                          COALESCE(SUM(truncated = 1 AND (following_count IS NULL
                              OR ABS(following_count - friend_count) > 0.01 * following_count)), 0),
                          COALESCE(SUM(truncated = 0
                              AND following_count - friend_count > 0.01 * following_count), 0)
                   FROM user_friends
                   WHERE status = 'ok' AND (truncated = 1 OR following_count > friend_count)"""
            ).fetchone()
            return ListCounts(int(ok[0]), int(row[0]), int(row[1]), int(row[2]))

        return await self._call("read figures", run)

    async def failure_kinds(self, *, limit: int) -> list[tuple[str, int]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            found = conn.execute(
                f"""SELECT {_ERROR_KIND} AS kind, COUNT(*) AS n FROM user_friends
                    WHERE status = 'failed' GROUP BY kind ORDER BY n DESC, kind LIMIT ?""",
                (figures.at_least_one(limit),),
            ).fetchall()
            return figures.failure_kinds(found)

        return await self._call("read figures", run)

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        since_sql = _to_sql(since)

        def run(conn: sqlite3.Connection) -> list[StatusSummary]:
            found = conn.execute(
                """SELECT COALESCE(u.partition, f.partition, 0) AS part, f.status,
                          COUNT(*) AS users, COALESCE(SUM(f.friend_count), 0) AS friends,
                          COALESCE(SUM((julianday(f.end_at) - julianday(f.start_at)) * 86400.0),
                                   0.0) AS seconds,
                          MIN(f.start_at) AS first_start, MAX(f.end_at) AS last_end,
                          SUM(f.end_at >= ?) AS recent
                   FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
                   GROUP BY part, f.status ORDER BY part, f.status""",
                (since_sql,),
            ).fetchall()
            return [figures.status_summary(r) for r in found]

        return await self._call("read summary", run)


_SAMPLE_COLUMNS = ", ".join(rows.SAMPLE_COLUMNS)
_SAMPLE_MARKS = ", ".join("?" * len(rows.SAMPLE_COLUMNS))


# A failed user's error starts with its kind ("timeout after retries: ...", "http_404:
# ...", "parse: ..."): the text before the first colon or space.
_ERROR_KIND = """CASE WHEN error IS NULL OR error = '' THEN '(none)' ELSE substr(error, 1,
    min(CASE instr(error, ':') WHEN 0 THEN length(error) + 1 ELSE instr(error, ':') END,
        CASE instr(error, ' ') WHEN 0 THEN length(error) + 1 ELSE instr(error, ' ') END) - 1)
    END"""


def _holder(row: sqlite3.Row | None) -> LeaseHolder | None:
    return None if row is None else rows.lease_holder(row)


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


def _table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def _read_partitions(conn: sqlite3.Connection) -> list[Partition]:
    found = conn.execute(
        "SELECT partition AS number, user_count, min_user_id, max_user_id"
        " FROM partitions ORDER BY partition"
    )
    return [rows.partition(r) for r in found]


def _stage_reset(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS import_stage (ord INTEGER PRIMARY KEY,
               user_id TEXT NOT NULL, screen_name TEXT NOT NULL, following_count INTEGER,
               id_num INTEGER)"""
    )
    conn.execute("DELETE FROM import_stage")


def _stage(rows: Sequence[tuple[Any, ...]]) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO import_stage (user_id, screen_name, following_count, id_num)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")

    return run


def _merge_staged(conn: sqlite3.Connection) -> ImportResult:
    conn.execute("BEGIN IMMEDIATE")
    read = int(conn.execute("SELECT COUNT(*) FROM import_stage").fetchone()[0])
    before = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    changes_before = conn.total_changes
    # GROUP BY user_id with MAX(ord): SQLite takes the bare columns from the row holding
    # the maximum, i.e. each user's last row; the groups come out in user_id order.
    conn.execute(
        """INSERT INTO users (user_id, screen_name, following_count, id_num)
           SELECT user_id, screen_name, following_count, id_num FROM (
               SELECT MAX(ord), user_id, screen_name, following_count, id_num
               FROM import_stage GROUP BY user_id)
           WHERE TRUE
           ON CONFLICT (user_id) DO UPDATE SET
               screen_name = excluded.screen_name,
               following_count = COALESCE(excluded.following_count, users.following_count)
           WHERE users.screen_name IS NOT excluded.screen_name
              OR (excluded.following_count IS NOT NULL
                  AND users.following_count IS NOT excluded.following_count)"""
    )
    touched = conn.total_changes - changes_before
    if touched:
        graph.keys_changed(conn)  # lists resolved before are resolved again
    after = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    distinct = int(conn.execute("SELECT COUNT(DISTINCT user_id) FROM import_stage").fetchone()[0])
    conn.execute("COMMIT")
    conn.execute("DELETE FROM import_stage")
    added = after - before
    return ImportResult(read=read, added=added, updated=touched - added, duplicates=read - distinct)


def _sql_value(value: object) -> object:
    """A value as this store's columns keep it: times as ISO 8601 UTC text."""
    return _to_sql(value) if isinstance(value, datetime) else value
