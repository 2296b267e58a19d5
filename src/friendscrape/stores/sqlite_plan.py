"""The SQLite store's users and plan: imports (staged in a temporary table), counts, the
NTILE plan and placing users imported after it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from friendscrape.models import PLAN_FACTS, Partition, PlanCut, User
from friendscrape.stores import planning, rows, sqlite_keys
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores.base import (
    Again,
    ImportResult,
)
from friendscrape.stores.planning import numeric_id, sort_key
from friendscrape.stores.sqlite_base import SqliteBase, to_sql
from friendscrape.stores.sqlite_match import fold

log = structlog.get_logger(__name__)

_ORDER = "id_num IS NULL, id_num, user_id"

# The job's own facts, one row each (``platform``: the upstream its users are on). Made
# by the first write that records one: a store of an older version has no such table,
# and its readers read it as recording nothing.
_JOB_TABLE = """CREATE TABLE IF NOT EXISTS job (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)"""


def _record_platform(platform: str) -> Callable[[sqlite3.Connection], str]:
    def run(conn: sqlite3.Connection) -> str:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_JOB_TABLE)
        conn.execute(
            "INSERT INTO job (key, value) VALUES ('platform', ?) ON CONFLICT (key) DO NOTHING",
            (platform,),
        )
        recorded = str(conn.execute("SELECT value FROM job WHERE key = 'platform'").fetchone()[0])
        conn.execute("COMMIT")
        return recorded

    return run


def _record_cut(conn: sqlite3.Connection, cut: PlanCut) -> None:
    """Replace the job facts saying how the plan was cut (in the plan's transaction: a
    plan and its record are written together or not at all)."""
    conn.execute(_JOB_TABLE)
    marks = ", ".join("?" * len(PLAN_FACTS))
    conn.execute(f"DELETE FROM job WHERE key IN ({marks})", PLAN_FACTS)
    conn.executemany("INSERT INTO job (key, value) VALUES (?, ?)", cut.facts().items())


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


# The staged users that are new or renamed (each user's last row), with the name held.
_CHANGED_STAGED = """SELECT s.user_id, s.screen_name, u.screen_name, u.user_id IS NULL FROM (
    SELECT MAX(ord), user_id, screen_name FROM import_stage GROUP BY user_id) AS s
LEFT JOIN users u ON u.user_id = s.user_id
WHERE u.user_id IS NULL OR u.screen_name IS NOT s.screen_name
LIMIT ?"""

# The same of users given as a JSON list of [user_id, screen_name] (the last one wins).
_CHANGED_GIVEN = """SELECT s.user_id, s.screen_name, u.screen_name, u.user_id IS NULL FROM (
    SELECT max(j.key), j.value ->> 0 AS user_id, j.value ->> 1 AS screen_name
    FROM json_each(?) AS j GROUP BY user_id) AS s
LEFT JOIN users u ON u.user_id = s.user_id
WHERE u.user_id IS NULL OR u.screen_name IS NOT s.screen_name
LIMIT ?"""


def _changed_keys(conn: sqlite3.Connection, sql: str, *params: Any) -> set[str] | None:
    """The keys (folded) an import about to be made adds or changes: a new user's id and
    name, a renamed user's old and new names; None when not worth knowing (no list saved
    yet) or too many (``graph.MAX_CHANGED_KEYS``). Call in the import's transaction,
    before its users are written; ``sql``: ``_CHANGED_STAGED`` or ``_CHANGED_GIVEN``."""
    if conn.execute("SELECT 1 FROM user_friends LIMIT 1").fetchone() is None:
        return None
    keys: set[str] = set()
    for user_id, name, before, added in conn.execute(sql, (*params, graph.MAX_CHANGED_KEYS)):
        if added:
            keys.add(fold(user_id))
        keys.update(fold(n) for n in (name, before) if n)
        if len(keys) > graph.MAX_CHANGED_KEYS:
            return None
    return keys


def _users_changed(conn: sqlite3.Connection, touched: int, keys: set[str] | None) -> None:
    """Start a new generation of the job's keys unless the import changed none of them
    (only following counts): lists resolved before are then resolved again."""
    if touched and keys != set():
        graph.keys_changed(conn, keys)


def _merge_staged(conn: sqlite3.Connection) -> ImportResult:
    conn.execute("BEGIN IMMEDIATE")
    read = int(conn.execute("SELECT COUNT(*) FROM import_stage").fetchone()[0])
    before = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    changes_before = conn.total_changes
    keys = _changed_keys(conn, _CHANGED_STAGED)
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
    _users_changed(conn, touched, keys)
    after = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    distinct = int(conn.execute("SELECT COUNT(DISTINCT user_id) FROM import_stage").fetchone()[0])
    conn.execute("COMMIT")
    conn.execute("DELETE FROM import_stage")
    added = after - before
    return ImportResult(read=read, added=added, updated=touched - added, duplicates=read - distinct)


UNCAPPED = 2**53
"""The ``:cap`` of a weight with no ``max_friends``: more names than any list holds."""


def weight_sql(count: str = "following_count") -> str:
    """SQL of a user's expected pages, as a plan by pages weighs it, from its following
    count (the column ``count``): the pages of the names its walk reads, at most ``:cap``
    (``max_friends``: a list stops there however many it follows), over ``:ps`` its
    platform's page size, plus one; ``:median`` where the count is unknown
    (``median_weight``). Its parameters: ``weight_params``."""
    return f"COALESCE((MIN(MAX({count}, 0), :cap) + :ps - 1) / :ps + 1, :median)"


def weight_params(page_size: int, max_friends: int | None, median: int) -> dict[str, Any]:
    """The parameters of ``weight_sql``."""
    cap = UNCAPPED if max_friends is None else max_friends
    return {"ps": page_size, "cap": cap, "median": median}


_WEIGHT = weight_sql()


def median_weight(conn: sqlite3.Connection, page_size: int, max_friends: int | None) -> int:
    """The median weight of the users whose following count is known (1: none is), over
    their weights capped at ``max_friends`` (a capped weight grows with the count, so the
    median count's weight is the median weight)."""
    known = int(
        conn.execute("SELECT COUNT(*) FROM users WHERE following_count IS NOT NULL").fetchone()[0]
    )
    if not known:
        return 1
    row = conn.execute(
        f"""SELECT {weight_sql()} FROM users
           WHERE following_count IS NOT NULL ORDER BY following_count LIMIT 1 OFFSET :at""",
        {**weight_params(page_size, max_friends, 1), "at": known // 2},
    ).fetchone()
    return int(row[0])


def kept_weights(
    kept: dict[tuple[int, int | None], int],
    conn: sqlite3.Connection,
    page_size: int,
    max_friends: int | None,
) -> dict[str, Any]:
    """``weight_params`` with ``median_weight`` read once a store and kept in ``kept``,
    for the claims' reads of expected pages (``partition_pages``, ``claim_read``): it
    sorts every known count (some 5 s at 3.6M users, in the store's thread), and a worker
    read it for the plan's weights and again at each claim whose held partitions have a
    user without one. An estimate for the leave rule, as the weights a worker reads
    once; a plan cut by pages reads it afresh."""
    key = (page_size, max_friends)
    found = kept.get(key)
    if found is None:
        found = kept[key] = median_weight(conn, page_size, max_friends)
    return weight_params(page_size, max_friends, found)


def _plan_by_pages(
    count: int, page_size: int, max_friends: int | None, planned_at: str
) -> Callable[[sqlite3.Connection], list[Partition]]:
    """The plan cut by expected work: each user weighs the pages its list needs (its
    following count, at most ``max_friends``, over ``page_size``, rounded up, plus one
    for the profile; the median where no count is known), and partition k holds the
    users, in plan order, whose work starts in the k-th ``count``-th of the total. Users
    too heavy for one share leave no empty partition: numbers are dense."""

    def run(conn: sqlite3.Connection) -> list[Partition]:
        conn.execute("BEGIN IMMEDIATE")
        median = median_weight(conn, page_size, max_friends)
        params = {**weight_params(page_size, max_friends, median), "count": count}
        total = conn.execute(f"SELECT COALESCE(SUM({_WEIGHT}), 0) FROM users", params).fetchone()
        params["total"] = max(int(total[0]), 1)
        conn.execute("DROP TABLE IF EXISTS temp.plan_order")
        conn.execute(
            "CREATE TEMP TABLE plan_order (rid INTEGER PRIMARY KEY, seq INTEGER, part INTEGER)"
        )
        conn.execute(
            f"""INSERT INTO temp.plan_order (rid, seq, part)
                SELECT rid, seq, DENSE_RANK() OVER (ORDER BY raw) FROM (
                    SELECT rid, seq, MIN(:count, (cum - w) * :count / :total + 1) AS raw FROM (
                        SELECT rowid AS rid, {_WEIGHT} AS w,
                               ROW_NUMBER() OVER (ORDER BY {_ORDER}) AS seq,
                               SUM({_WEIGHT}) OVER (ORDER BY {_ORDER} ROWS UNBOUNDED PRECEDING)
                                   AS cum
                        FROM users))
                ORDER BY rid""",
            params,
        )
        totals.replanned(
            conn,
            lambda: conn.execute(
                """UPDATE users SET seq = p.seq, partition = p.part
                   FROM temp.plan_order AS p WHERE p.rid = users.rowid"""
            ),
        )
        conn.execute("DROP TABLE temp.plan_order")
        conn.execute("DELETE FROM partitions")
        conn.execute(
            """INSERT INTO partitions (partition, user_count, min_user_id, max_user_id, planned_at)
               SELECT g.partition, g.n,
                      (SELECT user_id FROM users WHERE partition = g.partition AND seq = g.lo),
                      (SELECT user_id FROM users WHERE partition = g.partition AND seq = g.hi),
                      ?
               FROM (SELECT partition, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi
                     FROM users GROUP BY partition) AS g""",
            (planned_at,),
        )
        graph.index_keys(conn)  # lists are resolved at save from now on
        _record_cut(conn, PlanCut.of(page_size, max_friends))
        conn.execute("COMMIT")
        return _read_partitions(conn)

    return run


class SqlitePlan(SqliteBase):
    """PlanStore's writes and PlanReads on SQLite."""

    async def import_users(self, users: Sequence[User]) -> ImportResult:
        rows = [(u.user_id, u.screen_name, u.following_count, numeric_id(u.user_id)) for u in users]

        def run(conn: sqlite3.Connection) -> ImportResult:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            changes_before = conn.total_changes
            given = msgspec.json.encode([(u.user_id, u.screen_name) for u in users]).decode()
            keys = _changed_keys(conn, _CHANGED_GIVEN, given)
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
            _users_changed(conn, touched, keys)
            after = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            conn.execute("COMMIT")
            added = after - before
            return ImportResult(read=len(rows), added=added, updated=touched - added)

        result = await self._call("import", run)
        if result.added or result.updated:
            await self._rematch()
        return result

    async def _rematch(self) -> None:
        """The lists saved before the users changed, matched again once, in bulk (an
        export then reads them as lists matched at save)."""
        done = await self._call("rematch", sqlite_keys.rematch)
        if done.matched or done.kept:
            log.info("lists_rematched", lists=done.matched, unchanged=done.kept)

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
        if result.added or result.updated:
            await self._rematch()
        return result

    async def record_platform(self, platform: str) -> str:
        return await self._call("record platform", _record_platform(platform))

    async def user_count(self) -> int:
        return await self._call(
            "count", lambda c: int(c.execute("SELECT COUNT(*) FROM users").fetchone()[0])
        )

    async def result_count(self) -> int:
        return await self._call(
            "count", lambda c: int(c.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0])
        )

    async def following_counts_known(self) -> int:
        return await self._call(
            "count",
            lambda c: int(
                c.execute(
                    "SELECT COUNT(*) FROM users WHERE following_count IS NOT NULL"
                ).fetchone()[0]
            ),
        )

    async def plan_partitions(
        self, count: int, *, page_size: int | None = None, max_friends: int | None = None
    ) -> list[Partition]:
        planning.check_count(count)
        planned_at = to_sql(datetime.now(UTC))
        if page_size is not None:
            by_pages = _plan_by_pages(count, page_size, max_friends, planned_at)
            return await self._call("plan", by_pages)

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
            totals.replanned(
                conn,
                lambda: conn.execute(
                    """UPDATE users SET seq = p.seq, partition = CASE
                           WHEN p.seq <= :bigger * (:size + 1) THEN (p.seq - 1) / (:size + 1) + 1
                           ELSE :bigger + (p.seq - 1 - :bigger * (:size + 1)) / :size + 1 END
                       FROM temp.plan_order AS p WHERE p.rid = users.rowid""",
                    {"size": size, "bigger": bigger},
                ),
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
            _record_cut(conn, PlanCut.of(None, None))
            conn.execute("COMMIT")
            return _read_partitions(conn)

        return await self._call("plan", run)

    async def partitions(self) -> list[Partition]:
        return await self._call("read plan", _read_partitions)

    async def partition_pages(
        self, page_size: int | None, *, max_friends: int | None = None
    ) -> dict[int, int]:
        def run(conn: sqlite3.Connection) -> dict[int, int]:
            if page_size is None:
                sql, params = "COUNT(*)", {}
            else:
                sql = f"SUM({_WEIGHT})"
                params = kept_weights(self._medians, conn, page_size, max_friends)
            found = conn.execute(
                f"""SELECT partition, {sql} FROM users WHERE partition IS NOT NULL
                   GROUP BY partition""",
                params,
            ).fetchall()
            return {int(r[0]): int(r[1]) for r in found}

        return await self._call("read plan", run)

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
