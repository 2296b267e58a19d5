"""Waves on SQLite: ``user_friends`` keeps each user's newest result in full (what every
other read and the seed's SQL see); a result of an earlier wave moves to
``wave_history`` when a later wave's result replaces it, with its list only when the
list differs from the newer one (else NULL: "the same list as this user's next newer
result"). A wave in which few lists changed therefore adds one small row per user.

Opening a wave writes one row to ``waves``; "pending in wave W" is "no result of wave W".
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from friendscrape.models import FriendList, Status
from friendscrape.stores import lists_codec, rows
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores.base import WaveRow, WaveSummary
from friendscrape.stores.sqlite_base import SqliteBase, table_names, to_sql
from friendscrape.stores.sqlite_schema import add_columns
from friendscrape.stores.waves import lines_hash, list_hash, wave_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS waves (
    wave INTEGER PRIMARY KEY,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wave_history (   -- results of earlier waves, replaced since
    user_id TEXT NOT NULL,
    wave INTEGER NOT NULL,
    status TEXT NOT NULL,
    list_hash INTEGER,
    changed INTEGER,               -- 1: the list differs from the previous result's
    friend_count INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    following_count INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    friend_names BLOB,             -- NULL: the same list as the user's next newer result
    friend_ids BLOB
);
-- One index, in user order then wave: a wave's rows stream in user order from it (the
-- other waves' entries are passed over), and a user's other waves are found by it.
CREATE UNIQUE INDEX IF NOT EXISTS wave_history_user
    ON wave_history (length(user_id), user_id, wave);
"""

COLUMNS = {"wave": "INTEGER NOT NULL DEFAULT 1", "list_hash": "INTEGER", "changed": "INTEGER"}
"""Columns of ``user_friends`` added to a store of an older version (its rows: wave 1)."""

# A wave's results in user order, with what status and report count of them: from wave
# 2 on they count the current wave's rows only, and status sums each wave's, which this
# index holds in full, so their scans read it instead of every wide row (one of 3.6M
# results: about 4 KB read each). It replaces ``user_friends_wave`` (the same order,
# without the figures: its prefix) and ``user_friends_wave_figures`` (without changed).
_WAVE_INDEX = """CREATE INDEX IF NOT EXISTS user_friends_wave_totals
    ON user_friends (wave, length(user_id), user_id, partition, status, friend_count,
                     start_at, end_at, changed)"""

CURRENT = "(SELECT COALESCE(MAX(wave), 1) FROM waves)"
"""The current wave, as SQL (1 when none was opened)."""

_MOVED = (
    "user_id, wave, status, list_hash, changed, friend_count, truncated, following_count,"
    " error, attempts, start_at, end_at"
)

_IN_CHUNK = 500


def migrate(conn: sqlite3.Connection) -> None:
    """Add the waves tables and columns (a store opened to write)."""
    conn.executescript(SCHEMA)
    add_columns(conn, "user_friends", COLUMNS)
    conn.execute(_WAVE_INDEX)
    # user_friends_wave_ok held what the report's histogram now reads from the index above
    for older in ("user_friends_wave", "user_friends_wave_ok", "user_friends_wave_figures"):
        conn.execute(f"DROP INDEX IF EXISTS {older}")


def current(conn: sqlite3.Connection) -> int:
    """The wave runs collect now."""
    return int(conn.execute(f"SELECT {CURRENT}").fetchone()[0])


def in_current(conn: sqlite3.Connection, alias: str = "f", *, by_wave: bool = True) -> str:
    """A condition keeping the current wave's results (status and report count those):
    "1" while the job is in its first wave, so their scans still read only the indexes.

    ``by_wave=False`` keeps the wave's index from driving the scan (a unary ``+``): a
    query whose partial index holds few rows (failed users) reads those and checks each
    one's wave, instead of every row of the wave."""
    if "waves" not in table_names(conn):
        return "1"  # a store of an older version, opened read-only
    wave = current(conn)
    if wave <= 1:
        return "1"
    return f"{'' if by_wave else '+'}{alias}.wave = {wave:d}"


def _stored_hash(row: sqlite3.Row) -> int:
    if row["list_hash"] is not None:
        return int(row["list_hash"])
    names = lists_codec.decode(row["friend_names"])
    ids = lists_codec.decode(row["friend_ids"])
    return list_hash(names, ids)


def archive(
    conn: sqlite3.Connection, results: Sequence[FriendList], hashes: Sequence[int], wave: int
) -> list[int | None]:
    """Move the rows ``results`` replace from an earlier wave into ``wave_history`` (in
    the save's transaction); returns each result's ``changed`` value (None: the user had
    no earlier result to compare with)."""
    if wave <= 1:
        return [None] * len(results)
    old: dict[str, sqlite3.Row] = {}
    ids = [r.user_id for r in results]
    for start in range(0, len(ids), _IN_CHUNK):
        part = ids[start : start + _IN_CHUNK]
        found = conn.execute(
            f"SELECT {_MOVED}, friend_names, friend_ids FROM user_friends"
            f" WHERE user_id IN ({', '.join('?' * len(part))})",
            part,
        )
        old.update((row["user_id"], row) for row in found)
    flags: list[int | None] = []
    for result, new in zip(results, hashes, strict=True):
        row = old.get(result.user_id)
        if row is None:
            flags.append(None)
        elif int(row["wave"]) < wave:
            before = _stored_hash(row)
            same = before == new and row["status"] == "ok" and result.status is Status.OK
            _move(conn, row, before, keep_list=not same)
            flags.append(int(before != new))
        else:
            flags.append(_again_in_wave(conn, row, new))
    return flags


def _move(conn: sqlite3.Connection, row: sqlite3.Row, hashed: int, *, keep_list: bool) -> None:
    values = [row[c] for c in _MOVED.split(", ")]
    values[3] = hashed
    lists = (row["friend_names"], row["friend_ids"]) if keep_list else (None, None)
    conn.execute(
        f"INSERT OR REPLACE INTO wave_history ({_MOVED}, friend_names, friend_ids)"
        f" VALUES ({', '.join('?' * (len(values) + 2))})",
        [*values, *lists],
    )


def _again_in_wave(conn: sqlite3.Connection, row: sqlite3.Row, new: int) -> int | None:
    """A user collected again in the same wave (a failed one retried): a history row
    that said "the same list as the next newer result" meant the row being replaced, so
    it keeps that row's list now. Returns the new result's ``changed``."""
    last = conn.execute(
        "SELECT wave, list_hash, friend_names IS NULL AS bare FROM wave_history"
        " WHERE length(user_id) = length(?1) AND user_id = ?1 ORDER BY wave DESC LIMIT 1",
        (row["user_id"],),
    ).fetchone()
    if last is None:
        return None
    if last["bare"] and _stored_hash(row) != new:
        conn.execute(
            "UPDATE wave_history SET friend_names = ?, friend_ids = ? WHERE"
            " length(user_id) = length(?3) AND user_id = ?3 AND wave = ?",
            (row["friend_names"], row["friend_ids"], row["user_id"], last["wave"]),
        )
    return int(last["list_hash"] != new)


_NEWEST_COLUMNS = (
    "user_id, screen_name, status, source, partition, start_at, end_at, friend_names,"
    " friend_ids, following_count, truncated, error, attempts, list_hash"
)

_NEWEST_SQL = f"""SELECT {_NEWEST_COLUMNS} FROM user_friends WHERE wave = ?
    ORDER BY length(user_id), user_id"""

_OLDER_VERSION_SQL = f"""SELECT {_NEWEST_COLUMNS.replace("list_hash", "NULL AS list_hash")}
    FROM user_friends WHERE ? = 1 ORDER BY length(user_id), user_id"""


def _resolved(column: str) -> str:
    return f"""COALESCE(h.{column}, (SELECT n.{column} FROM wave_history n
        WHERE length(n.user_id) = length(h.user_id) AND n.user_id = h.user_id
          AND n.wave > h.wave AND n.friend_names IS NOT NULL
        ORDER BY n.wave LIMIT 1), f.{column}) AS {column}"""


_HISTORY_SQL = f"""SELECT h.user_id, f.screen_name, h.status, f.source, f.partition,
        h.start_at, h.end_at, {_resolved("friend_names")}, {_resolved("friend_ids")},
        h.following_count, h.truncated, h.error, h.attempts, h.list_hash
    FROM wave_history h INDEXED BY wave_history_user JOIN user_friends f
        ON f.user_id = h.user_id
    WHERE h.wave = ? ORDER BY length(h.user_id), h.user_id"""


def _order(row: WaveRow) -> tuple[int, str]:
    return len(row.user_id), row.user_id


async def merged(
    first: AsyncIterator[WaveRow], second: AsyncIterator[WaveRow]
) -> AsyncGenerator[WaveRow, None]:
    """Two streams in user order (of distinct users) as one, in user order."""
    a, b = await anext(first, None), await anext(second, None)
    while a is not None or b is not None:
        if b is None or (a is not None and _order(a) <= _order(b)):
            assert a is not None  # noqa: S101 (the test above)
            yield a
            a = await anext(first, None)
        else:
            yield b
            b = await anext(second, None)


def _summaries(conn: sqlite3.Connection, *, times: bool) -> list[WaveSummary]:
    if "waves" not in table_names(conn):  # a store of an older version, opened read-only
        figures = _FIGURES.format(table="user_friends", wave="1", changed="NULL")
        return _summaries_of(conn.execute(figures), {})
    opened = {int(r[0]): rows.moment(r[1]) for r in conn.execute("SELECT * FROM waves")}
    if not times and totals.kept(conn):
        found: list[Any] = totals.wave_counts(conn)  # the running totals: a few rows
    else:
        found = [
            row
            for table in ("user_friends", "wave_history")
            for row in conn.execute(_FIGURES.format(table=table, wave="wave", changed="changed"))
        ]
    last = max([*opened, 1])
    return _summaries_of(found, opened, last)


_FIGURES = """SELECT {wave} AS w, COUNT(*) AS done, SUM(status = 'ok') AS ok,
    SUM(COALESCE({changed}, 0)) AS changed, MIN(start_at) AS first_start,
    MAX(end_at) AS last_end FROM {table} GROUP BY w"""


def _summaries_of(
    found: Any, opened: dict[int, datetime | None], last: int = 1
) -> list[WaveSummary]:
    """Per-wave figures summed over the tables' rows; every wave up to ``last`` listed."""
    waves: dict[int, list[Any]] = {w: [0, 0, 0, None, None] for w in range(1, last + 1)}
    for row in found:
        got = waves.setdefault(int(row["w"]), [0, 0, 0, None, None])
        got[0] += int(row["done"] or 0)
        got[1] += int(row["ok"] or 0)
        got[2] += int(row["changed"] or 0)
        for slot, value, pick in ((3, row["first_start"], min), (4, row["last_end"], max)):
            if value is not None:
                got[slot] = value if got[slot] is None else pick(got[slot], value)
    return [
        WaveSummary(
            wave=w,
            opened_at=opened.get(w) or rows.moment(v[3]),
            first_start=rows.moment(v[3]),
            last_end=rows.moment(v[4]),
            done=v[0],
            ok=v[1],
            changed=v[2],
        )
        for w, v in sorted(waves.items())
    ]


class SqliteWaves(SqliteBase):
    """WaveStore on SQLite."""

    async def current_wave(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            if "waves" not in table_names(conn):
                return 1  # a store of an older version, opened read-only
            return current(conn)

        return await self._call("read waves", run)

    async def open_wave(self, now: datetime) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT COUNT(*) FROM waves").fetchone()[0] == 0:
                # Wave 1 was opened when the job's first saved result began (or now, if
                # none): the first row, not MIN(start_at), which reads every result.
                first = conn.execute(
                    "SELECT start_at FROM user_friends ORDER BY rowid LIMIT 1"
                ).fetchone()
                first = first[0] if first is not None else None
                conn.execute("INSERT INTO waves VALUES (1, ?)", (first or to_sql(now),))
            wave = current(conn) + 1
            conn.execute("INSERT INTO waves VALUES (?, ?)", (wave, to_sql(now)))
            conn.execute("COMMIT")
            return wave

        return await self._call("open wave", run)

    async def wave_summaries(self, *, times: bool = True) -> list[WaveSummary]:
        def run(conn: sqlite3.Connection) -> list[WaveSummary]:
            return _summaries(conn, times=times)

        return await self._call("read waves", run)

    async def wave_rows(self, wave: int) -> AsyncIterator[WaveRow]:
        older = await self._call("read waves", lambda c: "waves" not in table_names(c))
        newest = self._rows(_OLDER_VERSION_SQL if older else _NEWEST_SQL, wave)
        history = self._rows("SELECT NULL WHERE 0" if older else _HISTORY_SQL, wave)
        async with (
            contextlib.aclosing(newest) as first,
            contextlib.aclosing(history) as second,
            contextlib.aclosing(merged(first, second)) as both,
        ):
            async for row in both:
                yield row

    async def _rows(self, sql: str, wave: int) -> AsyncGenerator[WaveRow, None]:
        params: tuple[Any, ...] = (wave,) if "?" in sql else ()
        async with contextlib.aclosing(self._stream("read waves", sql, params)) as streamed:
            async for row in streamed:
                yield wave_row(row)


def hashes_of(
    results: Sequence[FriendList],
    joined: Sequence[tuple[str | bytes, str | bytes] | None] | None = None,
) -> list[int]:
    """Each result's list hash (``list_hash``); given ``joined`` (each list's names and
    ids as ``lists_codec.encode`` stored them, or None), from those where both are
    joined lines, which are not joined again."""
    if joined is None:
        return [list_hash(r.friend_names, r.friend_ids) for r in results]
    return [_hash(r, j) for r, j in zip(results, joined, strict=True)]


def _hash(result: FriendList, joined: tuple[str | bytes, str | bytes] | None) -> int:
    if joined is not None:
        names, ids = joined
        if (
            isinstance(names, bytes)
            and isinstance(ids, bytes)
            and names[0] == lists_codec.NAMES_RAW == ids[0]
        ):
            return lines_hash(names, ids, 1)
    return list_hash(result.friend_names, result.friend_ids)
