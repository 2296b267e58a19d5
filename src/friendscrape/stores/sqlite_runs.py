"""What a run reads and writes in SQLite: pending users, looked-up ids, the partition's
lease, run samples and results (upserted, their targets resolved at save)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from friendscrape.models import FriendList, UserPage, utc
from friendscrape.stores import figures, lists_codec, paging, rows
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores import sqlite_waves as waves
from friendscrape.stores.base import (
    ClaimRead,
    Lease,
    LeaseHolder,
    RunSample,
    SampleBucket,
    now_utc,
)
from friendscrape.stores.sqlite_base import SqliteBase, table_names, to_sql
from friendscrape.stores.sqlite_keys import SaveMatcher
from friendscrape.stores.sqlite_plan import kept_weights, weight_sql

_UPSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

_MICROSECOND = timedelta(microseconds=1)

_WIDTH = _UPSERT_ROW.count("?")
"""Values a row of the upsert binds; those the save's transaction fills in are at
``_NAMES`` (and the ids after), ``_KEYS`` (and keys_gen after), ``_WAVE``, ``_CHANGED``."""

_NAMES, _KEYS, _WAVE, _CHANGED = 3, 14, 16, 18

_UPSERT_ROWS = 50
"""Results written per statement where SQLite takes at most 999 parameters (its limit
before 3.32): 950."""

_UPSERT_ROWS_MOST = 100
"""Results written per statement where SQLite takes 1,900 parameters or more: a run's
batch of 100 in one statement, not two (each lets go of the interpreter's lock and
takes it back from the busy event loop)."""

_UPSERT = """
INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names, friend_ids,
    following_count, truncated, status, error, source, partition, attempts, start_at, end_at,
    friend_keys, keys_gen, wave, list_hash, changed)
VALUES {rows}
ON CONFLICT (user_id) DO UPDATE SET
    screen_name = excluded.screen_name, friend_count = excluded.friend_count,
    friend_names = excluded.friend_names, friend_ids = excluded.friend_ids,
    following_count = excluded.following_count, truncated = excluded.truncated,
    status = excluded.status, error = excluded.error, source = excluded.source,
    partition = excluded.partition, attempts = user_friends.attempts + excluded.attempts,
    start_at = excluded.start_at, end_at = excluded.end_at,
    friend_keys = excluded.friend_keys, keys_gen = excluded.keys_gen,
    wave = excluded.wave, list_hash = excluded.list_hash, changed = excluded.changed
"""


@functools.cache
def _upsert(rows: int) -> str:
    """The upsert of ``rows`` results in one statement."""
    return _UPSERT.format(rows=", ".join([_UPSERT_ROW] * rows))


def statement_sizes(count: int, most: int = _UPSERT_ROWS) -> list[int]:
    """The rows of each statement that writes ``count`` results: ``most`` each, then the
    rest in powers of two (at most 5 statements, 6 for ``_UPSERT_ROWS_MOST``). The
    connection keeps each statement it prepared, with the lists last bound to it (some
    33 KB a row on x-api), and each size of batch under 50 (one cut short by the flush
    interval) made another: batches of sizes 1-49 left some 40 MB of lists held. Now 7
    sizes in all (8 for ``_UPSERT_ROWS_MOST``)."""
    sizes = [most] * (count // most)
    rest = count % most
    sizes += [1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]
    return sizes


def rows_per_statement(conn: sqlite3.Connection) -> int:
    """The results one statement writes on ``conn``, as its SQLite's parameters allow."""
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return _UPSERT_ROWS_MOST if most >= _UPSERT_ROWS_MOST * _UPSERT_ROW.count("?") else _UPSERT_ROWS


def _upsert_all(conn: sqlite3.Connection, values: list[Any]) -> None:
    """Write the rows whose ``_WIDTH`` values each ``values`` holds one after the other
    (in order: a user twice is updated by the later row, as one by one) with one
    statement per ``rows_per_statement``, not one per result. Each statement lets go of
    the GIL and takes it back from the busy event loop, and a row a statement cost about
    two thread switches and a third of the store's CPU per result."""
    start = 0
    for size in statement_sizes(len(values) // _WIDTH, rows_per_statement(conn)):
        conn.execute(_upsert(size), values[start : start + size * _WIDTH])
        start += size * _WIDTH


def _upsert_values(
    results: Sequence[FriendList],
    joined: Sequence[tuple[str | bytes, str | bytes] | None],
    hashes: Sequence[int],
) -> list[Any]:
    """The upsert's values of ``results``, ``_WIDTH`` a row, built in the event loop's
    thread: the save's transaction fills in only what it reads (each row's keys, wave and
    ``changed``; a names-only list's stored form), a slice assignment each. Built in the
    store's thread, the rows' tuples held the interpreter's lock there while the busy
    loop waited for it."""
    values: list[Any] = []
    for r, pair, h in zip(results, joined, hashes, strict=True):
        names, ids = (None, None) if pair is None else pair
        values += (
            r.user_id,
            r.screen_name,
            r.friend_count,
            names,
            ids,
            r.following_count,
            int(r.truncated),
            r.status.value,
            r.error,
            r.source,
            r.partition,
            r.attempts,
            to_sql(r.start_at),
            to_sql(r.end_at),
            None,  # friend_keys, keys_gen, wave: the transaction's
            None,
            None,
            h,
            None,  # changed: the transaction's
        )
    return values


def _fill(
    values: list[Any], wave: int, keys: Sequence[tuple[bytes | None, int]], flags: list[int | None]
) -> None:
    """``_upsert_values``'s rows given what the save's transaction read."""
    values[_KEYS::_WIDTH] = [k for k, _ in keys]
    values[_KEYS + 1 :: _WIDTH] = [g for _, g in keys]
    values[_WAVE::_WIDTH] = [wave] * len(keys)
    values[_CHANGED::_WIDTH] = flags


def _saved(results: Sequence[FriendList], values: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """What the running totals count of a save's rows (``sqlite_totals.SAVED_COLUMNS``,
    one row's after the other's; wave and ``changed`` left to the transaction), each
    user's first row only, and which rows those are: a later row of the same user
    replaces it, and the replacement is counted by the totals' UPDATE trigger."""
    seen: set[str] = set()
    saved: list[Any] = []
    firsts = []
    for n, r in enumerate(results):
        if r.user_id not in seen:
            seen.add(r.user_id)
            row = values[n * _WIDTH : (n + 1) * _WIDTH]
            # Durations as the totals count them from the stored times, to the microsecond.
            took = (utc(r.end_at) - utc(r.start_at)) // _MICROSECOND
            # user_id, wave, partition, status, friend_count, micros, start_at, end_at, changed
            saved += (r.user_id, None, r.partition, row[7], r.friend_count, took, row[12], row[13])
            saved.append(None)
            firsts.append(n)
    return saved, firsts


def _json_list(values: Sequence[str]) -> str:
    """A list of names or ids as its JSON text (UTF-8 kept, not escaped), as the save's
    matching SQL reads it. msgspec writes it several times faster than json.dumps: a page
    of 1,000 names and ids is saved with every fetch, and json.dumps cost about a tenth
    of the collector's CPU on x-api."""
    return msgspec.json.encode(values).decode()


_UNREAD = "(not read at save)"
"""The matcher's text of a list with upstream ids until it is known to need it (neither
``[]`` nor JSON): lists on the export's fast path (the job's platform's), and any saved
while no filter is ready, are not matched at save, and writing their JSON cost some
45 us a list of 1,000 in the event loop's thread."""


def _match_texts(result: FriendList) -> tuple[str, str]:
    """A list's names and ids as the save's matching reads them: JSON text, or
    ``_UNREAD`` for both of a list with names and upstream ids (see ``_texts``)."""
    if result.friend_names and result.friend_ids:
        return (_UNREAD, _UNREAD)
    return (_json_list(result.friend_names), _json_list(result.friend_ids))


def _texts(
    matcher: SaveMatcher, results: Sequence[FriendList], lists: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``lists`` with the JSON text written, in the store's thread, of each list the
    matcher may read: all but those it leaves unread (known after ``prepare``)."""
    return [
        (_json_list(r.friend_names), _json_list(r.friend_ids))
        if pair[0] == _UNREAD and not matcher.leaves_to_export(r.source)
        else pair
        for r, pair in zip(results, lists, strict=True)
    ]


def _joined(result: FriendList) -> tuple[str | bytes, str | bytes] | None:
    """A list with upstream ids (the APIs', 1,000 a page and cheap to parse) as stored:
    joined, not deflated (deflating names and ids cost some 70 % more CPU per x-api
    page), from the parser's joined text when the result carries it (a list of one page
    whole: not joined again). Joining holds the GIL throughout, so it is done in the event
    loop's thread: in the store's thread the loop waited for it, and took the lock back
    and forth with it. None for a names-only list (the HTML source's, 20 names a page),
    deflated in the store's thread: its 6-7 KB of JSON become some 3.3 KB for 1-2 % of the
    CPU its pages cost."""
    if not result.friend_ids:
        return None
    if result.joined is None:
        return (
            lists_codec.encode(result.friend_names, deflate=False),
            lists_codec.encode(result.friend_ids, deflate=False),
        )
    # The parser's text, whose values it checked hold no line feed: not counted again.
    names, ids = result.joined
    return (
        lists_codec.encode(result.friend_names, deflate=False, joined=names, line_free=True),
        lists_codec.encode(result.friend_ids, deflate=False, joined=ids, line_free=True),
    )


_SAMPLE_COLUMNS = ", ".join(rows.SAMPLE_COLUMNS)

_SAMPLE_MARKS = ", ".join("?" * len(rows.SAMPLE_COLUMNS))


def _holder(row: sqlite3.Row | None) -> LeaseHolder | None:
    return None if row is None else rows.lease_holder(row)


def _lease_holder(conn: sqlite3.Connection, partition: int) -> LeaseHolder | None:
    return _holder(
        conn.execute(
            "SELECT host, pid, run_id, acquired_at, expires_at FROM partition_leases"
            " WHERE partition = ?",
            (partition,),
        ).fetchone()
    )


def _take(conn: sqlite3.Connection, lease: Lease, now: datetime) -> None:
    """Write ``lease`` as its partition's holder from ``now`` (inside the caller's
    transaction, after its check)."""
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
            to_sql(now),
            to_sql(now),
            to_sql(lease.expires(now)),
        ),
    )


def _sql_value(value: object) -> object:
    """A value as this store's columns keep it: times as ISO 8601 UTC text."""
    return to_sql(value) if isinstance(value, datetime) else value


_PENDING_KEYS = ("user_id", "screen_name", "following_count", "position", "resolved_id")
_PENDING_USERS = f"""SELECT json_group_array(json_array(user_id, screen_name, following_count,
        position, resolved_id)) FROM (
    SELECT u.user_id, u.screen_name, u.following_count, u.seq AS position, r.resolved_id
    FROM users u
    LEFT JOIN user_friends f ON f.user_id = u.user_id
    LEFT JOIN resolved_ids r ON r.user_id = u.user_id
    WHERE u.partition = ? AND u.seq > ?
      AND (f.user_id IS NULL OR f.wave < {waves.CURRENT} OR (? AND f.status = 'failed'))
    ORDER BY u.seq LIMIT ?)"""


class SqliteRuns(SqliteBase):
    """RunStore on SQLite, with the leases and samples status reads."""

    async def pending_users(
        self, partition: int, *, retry_failed: bool, cursor: str | None, limit: int
    ) -> UserPage:
        after = paging.cursor_after(cursor)

        def run(conn: sqlite3.Connection) -> UserPage:
            # The page as one JSON text, not a row a user: reading a row lets go of the
            # interpreter's lock for its step, its count of values and each value's type
            # (seven times a user), each a hand-over with the busy loop, whose fetchers
            # this read feeds while they run. The aggregate takes the rows in the
            # subquery's order (a subquery with a LIMIT is not merged into it).
            (found,) = conn.execute(
                _PENDING_USERS, (partition, after, retry_failed, limit)
            ).fetchone()
            users = [dict(zip(_PENDING_KEYS, r, strict=True)) for r in msgspec.json.decode(found)]
            return paging.user_page(users, limit)

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
                f"""SELECT COUNT(*) FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
                   WHERE u.partition = ? AND (f.user_id IS NULL OR f.wave < {waves.CURRENT}
                          OR (? AND f.status = 'failed'))""",
                (partition, retry_failed),
            ).fetchone()
            return int(row[0])

        return await self._call("count pending", run)

    async def pending_partitions(self, *, retry_failed: bool) -> list[int]:
        def run(conn: sqlite3.Connection) -> list[int]:
            # Partition by partition through the (partition, seq) index, each stopping
            # at its first pending user: a done partition costs a walk of its users, a
            # pending one usually a single row.
            found = conn.execute(
                f"""SELECT p.partition FROM partitions p
                   WHERE EXISTS (
                       SELECT 1 FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
                       WHERE u.partition = p.partition
                         AND (f.user_id IS NULL OR f.wave < {waves.CURRENT}
                              OR (? AND f.status = 'failed')))
                   ORDER BY p.partition""",
                (retry_failed,),
            ).fetchall()
            return [int(r[0]) for r in found]

        return await self._call("read pending partitions", run)

    async def acquire_lease(self, lease: Lease) -> None:
        def run(conn: sqlite3.Connection) -> tuple[LeaseHolder | None, datetime]:
            # One IMMEDIATE transaction: the check and the take cannot interleave with
            # another run's, so exactly one of two simultaneous runs gets the lease.
            conn.execute("BEGIN IMMEDIATE")
            now = now_utc()
            holder = _lease_holder(conn, lease.partition)
            if holder is not None and holder.run_id != lease.run_id and not holder.gone(now):
                conn.execute("ROLLBACK")
                return holder, now
            _take(conn, lease, now)
            conn.execute("COMMIT")
            return None, now

        holder, now = await self._call("take lease", run)
        if holder is not None:
            raise holder.held_error(lease.partition, now)

    async def claim_lease(
        self, run_id: str, ttl: float, candidates: Sequence[int], gone: Mapping[int, str]
    ) -> Lease | None:
        """The first of ``candidates`` no other live run holds, taken in one IMMEDIATE
        transaction (``gone`` is not needed: this store asks each holder's process)."""
        del gone

        def run(conn: sqlite3.Connection) -> Lease | None:
            conn.execute("BEGIN IMMEDIATE")
            now = now_utc()
            for part in candidates:
                holder = _lease_holder(conn, part)
                if holder is None or holder.run_id == run_id or holder.gone(now):
                    lease = Lease(partition=part, run_id=run_id, ttl=ttl)
                    _take(conn, lease, now)
                    conn.execute("COMMIT")
                    return lease
            conn.execute("ROLLBACK")
            return None

        return await self._call("claim lease", run)

    async def leases(self) -> dict[int, LeaseHolder]:
        return await self._call("read leases", _read_leases)

    async def claim_view(self, *, retry_failed: bool) -> tuple[list[int], dict[int, LeaseHolder]]:
        # The leases first: a partition whose holder ends it between the two reads is
        # then no longer pending, not pending with no lease (free, claimed for nothing).
        leases = await self.leases()
        pending = await self.pending_partitions(retry_failed=retry_failed)
        return pending, leases if pending else {}  # as on BigQuery: nothing when none pending

    async def claim_read(
        self, *, retry_failed: bool, page_size: int | None, max_friends: int | None = None
    ) -> ClaimRead:
        pending, leases = await self.claim_view(retry_failed=retry_failed)
        if not leases:
            return ClaimRead(pending, leases, {})
        # Only the partitions with a lease row: each a walk of its own users by the
        # (partition, seq) index, not a scan of every pending user at each claim.
        weight = "COUNT(*)" if page_size is None else f"SUM({weight_sql('u.following_count')})"
        params: dict[str, Any] = {"retry_failed": retry_failed}

        def run(conn: sqlite3.Connection) -> list[tuple[int, int, int]]:
            if page_size is not None:
                params.update(kept_weights(self._medians, conn, page_size, max_friends))
            found = conn.execute(
                f"""SELECT u.partition, {weight}, COUNT(*)
                   FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
                   WHERE u.partition IN (SELECT partition FROM partition_leases)
                     AND (f.user_id IS NULL OR f.wave < {waves.CURRENT}
                          OR (:retry_failed AND f.status = 'failed'))
                   GROUP BY u.partition""",
                params,
            ).fetchall()
            return [(int(r[0]), int(r[1]), int(r[2])) for r in found]

        found = await self._call("read pending pages", run)
        left = {part: pages for part, pages, _users in found}
        return ClaimRead(pending, leases, left, {part: users for part, _pages, users in found})

    async def renew_lease(self, lease: Lease) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = now_utc()
            cursor = conn.execute(
                """UPDATE partition_leases SET heartbeat_at = ?, expires_at = ?
                   WHERE partition = ? AND run_id = ?""",
                (to_sql(now), to_sql(lease.expires(now)), lease.partition, lease.run_id),
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
            if "run_samples" not in table_names(conn):
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
        since_sql = to_sql(since) if since is not None else ""

        def run(conn: sqlite3.Connection) -> list[SampleBucket]:
            if "run_samples" not in table_names(conn):
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

    async def save(self, results: Sequence[FriendList]) -> None:
        # The lists as JSON text, which the matching's SQL reads; they are stored compact.
        # Those with upstream ids wait until the matcher says whether it reads them.
        # The hashes too are taken here, in the event loop's thread: in the store's,
        # hashing let go of the interpreter's lock twice a list (blake2b does for every
        # input over 2 KB), and each time the busy loop took it and the store's thread
        # waited to get it back, a few futex calls each time.
        unread = [_match_texts(r) for r in results]
        joined = [_joined(r) for r in results]
        hashes = waves.hashes_of(results, joined)
        values = _upsert_values(results, joined, hashes)
        saved, firsts = _saved(results, values) if self._keeps_totals else ([], [])
        names_only = [(n, r.friend_names) for n, r in enumerate(results) if joined[n] is None]
        names = [r.friend_names for r in results]
        ids = [r.friend_ids for r in results]
        sources = [r.source for r in results]
        users = [r.user_id for r in results]
        matcher = self._matcher
        reserve_heap = self._reserve_heap

        def run(conn: sqlite3.Connection) -> None:
            # What is left here runs SQLite, or fills in what the transaction read.
            reserve_heap()
            # Names-only lists are deflated here, in the store's thread (zlib lets go of
            # the GIL meanwhile): the event loop's thread is the collector's busiest.
            for n, friends in names_only:
                at = n * _WIDTH + _NAMES
                values[at : at + 2] = (lists_codec.encode(friends), lists_codec.EMPTY)
            matcher.prepare(conn, unread)
            lists = _texts(matcher, results, unread)
            conn.execute("BEGIN IMMEDIATE")
            # The wave's: a row of an earlier wave this replaces is kept in the history.
            gen, current = graph.can_resolve_with(conn, waves.CURRENT)
            wave = int(current)
            # Each list's targets resolved now, against the job's users, once.
            keys = matcher.resolved_keys(
                conn, lists, names, ids=ids, sources=sources, users=users, gen=gen
            )
            flags = waves.archive(conn, results, hashes, wave)
            if saved:
                width = len(totals.SAVED_COLUMNS)
                saved[1::width] = [wave] * len(firsts)
                saved[width - 1 :: width] = [flags[n] for n in firsts]
                totals.add_saved(conn, saved)
            _fill(values, wave, keys, flags)
            _upsert_all(conn, values)
            conn.execute("COMMIT")

        await self._call("write", run, journals_in_memory=True)


def _read_leases(conn: sqlite3.Connection) -> dict[int, LeaseHolder]:
    if "partition_leases" not in table_names(conn):
        return {}  # a store of an older version, opened read-only
    return rows.leases(
        conn.execute(
            "SELECT partition AS part, host, pid, run_id, acquired_at, expires_at"
            " FROM partition_leases ORDER BY partition"
        )
    )
