"""Running totals of the SQLite store's results, kept by triggers, so `status` reads a
few rows instead of every result (3.6M results cost some 2 s of CPU to scan at best).

``result_totals`` holds, per wave, partition (as status counts it: the user's planned
partition, else the result's own, else 0) and status: users, the sum of friend counts,
the sum of durations in integer microseconds, lists changed, and the first start and
last end. ``history_totals`` holds what ``wave_history`` adds to each wave. Triggers on
``users``, ``wave_history`` and on the updates and deletes of ``user_friends`` keep both
exact whatever writes them (a replaced or retried result, a row moved to another wave or
partition, or any other program's SQL), in the writer's own transaction.

The results a save adds are counted by the save itself, one statement a save
(``add_saved``): ``user_friends`` has no INSERT trigger, because SQLite copies every row
of a multi-row INSERT into a temporary table first whenever the table has one (some
15-20 µs a 33 KB x-api row). A row another program inserts is caught by the totals'
own count of rows (``counted``): while it differs from the table's, readers count the
figures from the rows, and the store's next open to write counts the totals again.

A first start or last end cannot be kept exactly when the row holding it goes: the
group's figure is then marked stale (its value a bound) until a newer row passes it,
and readers count a stale group's times again from the indexes (``stale_times``).

A plan moves every user at once: it drops the ``users`` triggers, moves the users and
counts the totals again (``replanned``), in its transaction. A store of an older
version gains the tables, counted once, when it is first opened to write.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from friendscrape.stores.sqlite_base import table_names

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS result_totals (
    wave INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    status TEXT NOT NULL,
    users INTEGER NOT NULL,
    friends INTEGER NOT NULL,
    micros INTEGER NOT NULL,       -- durations (end - start), summed, in microseconds
    changed INTEGER NOT NULL,
    unplaced INTEGER NOT NULL,     -- rows counted by their own partition (no plan's)
    first_start TEXT,
    last_end TEXT,
    stale_start INTEGER NOT NULL,  -- 1: first_start is a bound (its row went)
    stale_end INTEGER NOT NULL,
    PRIMARY KEY (wave, partition, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_totals (
    wave INTEGER PRIMARY KEY,
    done INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    changed INTEGER NOT NULL
);
-- The results of the last hour (status's recent rate), read without the wide rows.
CREATE INDEX IF NOT EXISTS user_friends_end
    ON user_friends (end_at, wave, status, partition, user_id);
"""


def micros(column: str) -> str:
    """A stored time as integer microseconds (of its UTC text, ``YYYY-MM-DDTHH:MM:SS``
    and an optional fraction): exact, where julianday() rounds to milliseconds."""
    return (
        f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
        f" + CASE WHEN substr({column}, 20, 1) = '.' THEN"
        f" CAST(round(CAST('0' || substr({column}, 20) AS REAL) * 1000000) AS INTEGER)"
        " ELSE 0 END)"
    )


def duration(alias: str) -> str:
    """A result's duration in microseconds, as SQL."""
    return f"({micros(f'{alias}.end_at')} - {micros(f'{alias}.start_at')})"


def _plan_of(user: str) -> str:
    return f"(SELECT partition FROM users WHERE user_id = {user})"


_MERGE = """ON CONFLICT (wave, partition, status) DO UPDATE SET
            users = result_totals.users + excluded.users,
            friends = result_totals.friends + excluded.friends,
            micros = result_totals.micros + excluded.micros,
            changed = result_totals.changed + excluded.changed,
            unplaced = result_totals.unplaced + excluded.unplaced,
            stale_start = result_totals.stale_start
                AND excluded.first_start > result_totals.first_start,
            first_start = CASE WHEN excluded.first_start <= result_totals.first_start
                THEN excluded.first_start ELSE result_totals.first_start END,
            stale_end = result_totals.stale_end AND excluded.last_end < result_totals.last_end,
            last_end = CASE WHEN excluded.last_end >= result_totals.last_end
                THEN excluded.last_end ELSE result_totals.last_end END"""
"""Rows counted into their group (one result, or a save's results at once)."""


def _add(row: str, plan: str) -> str:
    """Count ``row`` (NEW, OLD or an alias) in its group, whose plan partition is ``plan``."""
    return f"""INSERT INTO result_totals (wave, partition, status, users, friends, micros,
            changed, unplaced, first_start, last_end, stale_start, stale_end)
        SELECT {row}.wave, COALESCE({plan}, {row}.partition, 0), {row}.status, 1,
            {row}.friend_count, {duration(row)}, COALESCE({row}.changed, 0),
            {plan} IS NULL, {row}.start_at, {row}.end_at, 0, 0
        {{source}} WHERE TRUE
        {_MERGE};"""


def _remove(row: str, plan: str) -> str:
    """Take ``row`` out of its group (a group left empty is deleted)."""
    part = f"COALESCE({plan}, {row}.partition, 0)"
    return f"""UPDATE result_totals SET users = result_totals.users - 1,
            friends = result_totals.friends - {row}.friend_count,
            micros = result_totals.micros - {duration(row)},
            changed = result_totals.changed - COALESCE({row}.changed, 0),
            unplaced = result_totals.unplaced - ({plan} IS NULL),
            stale_start = result_totals.stale_start OR {row}.start_at <= result_totals.first_start,
            stale_end = result_totals.stale_end OR {row}.end_at >= result_totals.last_end
        {{source}} WHERE result_totals.wave = {row}.wave
            AND result_totals.partition = {part} AND result_totals.status = {row}.status;
        DELETE FROM result_totals WHERE users <= 0 AND (wave, partition, status) IN
            (SELECT {row}.wave, {part}, {row}.status {{source}});"""


def _history(row: str, sign: str) -> str:
    return f"""INSERT INTO history_totals (wave, done, ok, changed)
        VALUES ({row}.wave, {sign}1, {sign}({row}.status = 'ok'),
                {sign}COALESCE({row}.changed, 0))
        ON CONFLICT (wave) DO UPDATE SET done = done + excluded.done,
            ok = ok + excluded.ok, changed = changed + excluded.changed;"""


_RESULT_COLUMNS = "wave, partition, status, friend_count, start_at, end_at, changed, user_id"

_FRIENDS = "FROM (SELECT * FROM user_friends WHERE user_id = NEW.user_id) AS f"
"""The result of the user a ``users`` trigger fires for (none: nothing to move)."""


def _on_results() -> dict[str, str]:
    # The user's plan partition looked up once a statement, not once a use.
    own = f"FROM (SELECT {_plan_of('NEW.user_id')} AS p) AS u"
    old = f"FROM (SELECT {_plan_of('OLD.user_id')} AS p) AS u"
    return {
        "result_totals_delete": f"""AFTER DELETE ON user_friends BEGIN
            {_remove("OLD", "u.p").format(source=old)} END""",
        "result_totals_update": f"""AFTER UPDATE OF {_RESULT_COLUMNS} ON user_friends BEGIN
            {_remove("OLD", "u.p").format(source=old)}
            {_add("NEW", "u.p").format(source=own)} END""",
        "history_totals_insert": f"""AFTER INSERT ON wave_history BEGIN
            {_history("NEW", "+")} END""",
        "history_totals_delete": f"""AFTER DELETE ON wave_history BEGIN
            {_history("OLD", "-")} END""",
        "history_totals_update": f"""AFTER UPDATE OF wave, status, changed ON wave_history
            BEGIN {_history("OLD", "-")} {_history("NEW", "+")} END""",
    }


def _on_users() -> dict[str, str]:
    """A user's result counted under the user's new partition (insert, plan, delete)."""
    moved = "EXISTS (SELECT 1 FROM user_friends WHERE user_id = NEW.user_id)"
    gone = "EXISTS (SELECT 1 FROM user_friends WHERE user_id = OLD.user_id)"
    before = "(SELECT OLD.partition)"
    after = "(SELECT NEW.partition)"
    nothing = "(SELECT NULL)"
    old_source = _FRIENDS.replace("NEW.", "OLD.")
    return {
        "result_totals_user_insert": f"""AFTER INSERT ON users
            WHEN NEW.partition IS NOT NULL AND {moved} BEGIN
            {_remove("f", nothing).format(source=_FRIENDS)}
            {_add("f", after).format(source=_FRIENDS)} END""",
        "result_totals_user_update": f"""AFTER UPDATE OF partition ON users
            WHEN OLD.partition IS NOT NEW.partition AND {moved} BEGIN
            {_remove("f", before).format(source=_FRIENDS)}
            {_add("f", after).format(source=_FRIENDS)} END""",
        "result_totals_user_delete": f"""AFTER DELETE ON users
            WHEN OLD.partition IS NOT NULL AND {gone} BEGIN
            {_remove("f", before).format(source=old_source)}
            {_add("f", nothing).format(source=old_source)} END""",
    }


def _create(conn: sqlite3.Connection, triggers: dict[str, str]) -> None:
    for name, body in triggers.items():
        conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def _triggers(conn: sqlite3.Connection) -> set[str]:
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    return {str(r[0]) for r in found}


TRIGGERS = frozenset({*_on_results(), *_on_users()})
"""The triggers' names (a store lacking any has its totals counted again when opened)."""

RETIRED = frozenset({"result_totals_insert"})
"""Triggers of older versions, dropped when the store is opened to write: the INSERT
trigger on ``user_friends`` (saves count their rows themselves, ``add_saved``)."""

SAVED_COLUMNS = (
    "user_id",
    "wave",
    "partition",
    "status",
    "friend_count",
    "micros",
    "start_at",
    "end_at",
    "changed",
)
"""The values of each saved row ``add_saved`` takes, in this order (``micros``: the
result's duration in microseconds, as ``duration`` counts it from the stored times)."""

_SAVED_ROWS = 100
"""Rows counted per statement: 900 parameters, under the oldest SQLite's 999."""


@functools.cache
def _saved_sql(rows: int) -> str:
    # Values bound, not passed as one JSON text: reading 9 fields a row back out of JSON
    # cost SQLite some 3 µs a row, as much as the rest of the statement.
    values = ", ".join([f"({', '.join('?' * len(SAVED_COLUMNS))})"] * rows)
    columns = ", ".join(f"column{n} AS {c}" for n, c in enumerate(SAVED_COLUMNS, 1))
    return f"""INSERT INTO result_totals (wave, partition, status, users, friends, micros,
            changed, unplaced, first_start, last_end, stale_start, stale_end)
        SELECT n.wave, COALESCE(u.partition, n.partition, 0) AS part, n.status, COUNT(*),
            SUM(n.friend_count), SUM(n.micros), SUM(COALESCE(n.changed, 0)),
            SUM(u.partition IS NULL), MIN(n.start_at), MAX(n.end_at), 0, 0
        FROM (SELECT {columns} FROM (VALUES {values})) AS n
            LEFT JOIN users u ON u.user_id = n.user_id
        WHERE n.user_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM user_friends f WHERE f.user_id = n.user_id)
        GROUP BY n.wave, part, n.status
        {_MERGE}"""


def add_saved(conn: sqlite3.Connection, saved: list[Any]) -> None:
    """Count the rows a save is about to write whose users have no result yet
    (``SAVED_COLUMNS`` each, one row's after the other's; each user's first row of the
    save only): call in the save's transaction, before its INSERT. Rows that replace a
    result are counted by the UPDATE trigger the INSERT's upsert fires (so a user twice
    in one save is counted once, by the later row, as a save one by one would)."""
    width = len(SAVED_COLUMNS)
    for start in range(0, len(saved), _SAVED_ROWS * width):
        values = saved[start : start + _SAVED_ROWS * width]
        # Padded with empty rows (no user: not counted) to a power of two or the full
        # size, so a run's saves prepare a few statements, not one per batch size.
        rows = len(values) // width
        size = min(_SAVED_ROWS, 1 << (rows - 1).bit_length())
        values += [None] * (width * (size - rows))
        conn.execute(_saved_sql(size), values)


_COUNTED = """SELECT (SELECT COALESCE(SUM(users), 0) FROM result_totals)
    = (SELECT COUNT(*) FROM user_friends)"""


def counted(conn: sqlite3.Connection) -> bool:
    """Whether the totals count as many results as the table holds (one snapshot): not
    when another program inserted rows (SQLite counts the table by its narrowest index,
    a few ms a million results)."""
    return bool(conn.execute(_COUNTED).fetchone()[0])


_COUNT_RESULTS = f"""INSERT INTO result_totals (wave, partition, status, users, friends,
        micros, changed, unplaced, first_start, last_end, stale_start, stale_end)
    SELECT f.wave, COALESCE(u.partition, f.partition, 0) AS part, f.status, COUNT(*),
        COALESCE(SUM(f.friend_count), 0), COALESCE(SUM({duration("f")}), 0),
        COALESCE(SUM(COALESCE(f.changed, 0)), 0), SUM(u.partition IS NULL),
        MIN(f.start_at), MAX(f.end_at), 0, 0
    FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
    GROUP BY f.wave, part, f.status"""

_COUNT_HISTORY = """INSERT INTO history_totals (wave, done, ok, changed)
    SELECT wave, COUNT(*), SUM(status = 'ok'), SUM(COALESCE(changed, 0))
    FROM wave_history GROUP BY wave"""


def _current(conn: sqlite3.Connection) -> bool:
    """Whether the store's totals are this version's and count every result."""
    found = _triggers(conn)
    return found >= TRIGGERS and not found & RETIRED and counted(conn)


def migrate(conn: sqlite3.Connection) -> bool:
    """The totals' tables and triggers (a store opened to write): a store without them
    (new, or of an older version), or whose totals miss rows another program inserted,
    has its totals counted again, in one transaction; a stale first start or last end is
    counted again (``heal``). True: the store keeps totals (its saves count their rows)."""
    if _current(conn):
        heal(conn)
        return True
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _current(conn):  # another process may have done it meanwhile
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for name in RETIRED:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            _recount(conn)
            _create(conn, _on_results())
            _create(conn, _on_users())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _recount(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM result_totals")
    conn.execute(_COUNT_RESULTS)
    conn.execute("DELETE FROM history_totals")
    conn.execute(_COUNT_HISTORY)


def replanned(conn: sqlite3.Connection, move: Callable[[], T]) -> T:
    """``move`` (a plan's update of every user's partition, inside its transaction) run
    without the per-user triggers, the results' totals counted again after it: one pass
    over the results instead of a trigger per user."""
    for name in _on_users():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    moved = move()
    conn.execute("DELETE FROM result_totals")
    conn.execute(_COUNT_RESULTS)
    _create(conn, _on_users())
    return moved


def kept(conn: sqlite3.Connection) -> bool:
    """Whether the store's totals can be read: a store of an older version opened
    read-only has none, and one whose totals miss rows another program inserted is
    counted from its rows until it is next opened to write."""
    return "result_totals" in table_names(conn) and _triggers(conn) >= TRIGGERS and counted(conn)


def _wave_filter(alias: str) -> str:
    """The current wave's rows (``:w`` NULL in the first wave: every row, as status counts)."""
    return f"(:w IS NULL OR {alias}.wave = :w)"


_KEPT = f"""SELECT partition AS part, status, SUM(users) AS users, SUM(friends) AS friends,
        SUM(micros) AS micros, MIN(first_start) AS first_start, MAX(last_end) AS last_end,
        MAX(stale_start) OR MAX(stale_end) AS stale, SUM(unplaced) AS unplaced
    FROM result_totals t WHERE {_wave_filter("t")}
    GROUP BY partition, status ORDER BY partition, status"""

_RECENT = f"""SELECT COALESCE(u.partition, f.partition, 0) AS part, f.status AS status,
        COUNT(*) AS recent
    FROM user_friends f INDEXED BY user_friends_end LEFT JOIN users u ON u.user_id = f.user_id
    WHERE f.end_at >= :since AND {_wave_filter("f")} GROUP BY part, f.status"""

# A stale group's times, from its users (the plan's partition index) and the indexes
# that hold each result's times: the group's users are read, not every result.
_PLACED_TIMES = """SELECT MIN(f.start_at), MAX(f.end_at)
    FROM users u INDEXED BY users_partition_seq
    JOIN user_friends f INDEXED BY user_friends_figures ON f.user_id = u.user_id
    WHERE u.partition = :p AND f.status = :s"""

_PLACED_WAVE_TIMES = """SELECT MIN(f.start_at), MAX(f.end_at)
    FROM users u INDEXED BY users_partition_seq
    JOIN user_friends f INDEXED BY user_friends_wave_totals
        ON f.wave = :w AND length(f.user_id) = length(u.user_id) AND f.user_id = u.user_id
    WHERE u.partition = :p AND f.status = :s"""

# Failed results (the ones a retry replaces, so the groups most often stale) from their
# own small index: every failed result is read, none of the others.
_FAILED_TIMES = f"""SELECT MIN(f.start_at), MAX(f.end_at)
    FROM user_friends f INDEXED BY user_friends_failed LEFT JOIN users u ON u.user_id = f.user_id
    WHERE f.status = 'failed' AND :s = 'failed' AND COALESCE(u.partition, f.partition, 0) = :p
      AND {_wave_filter("f")}"""

# A group with results counted by their own partition (users with no plan's): every
# result is read (rare: a result of a user no plan placed).
_ANY_TIMES = f"""SELECT MIN(f.start_at), MAX(f.end_at)
    FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
    WHERE COALESCE(u.partition, f.partition, 0) = :p AND f.status = :s
      AND {_wave_filter("f")}"""

_RECOUNT = f"""SELECT COALESCE(u.partition, f.partition, 0) AS part, f.status AS status,
        COUNT(*) AS users, COALESCE(SUM(f.friend_count), 0) AS friends,
        COALESCE(SUM({duration("f")}), 0) AS micros,
        MIN(f.start_at) AS first_start, MAX(f.end_at) AS last_end,
        SUM(f.end_at >= :since) AS recent
    FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
    WHERE {{wave}}
    GROUP BY part, f.status ORDER BY part, f.status"""


def _summary_row(row: Any, recent: int, times: tuple[Any, Any] | None = None) -> dict[str, Any]:
    first, last = times if times is not None else (row["first_start"], row["last_end"])
    return {
        "part": row["part"],
        "status": row["status"],
        "users": row["users"],
        "friends": row["friends"],
        "seconds": int(row["micros"] or 0) / 1e6,
        "first_start": first,
        "last_end": last,
        "recent": recent,
    }


def summary(conn: sqlite3.Connection, wave: int | None, since: str) -> list[dict[str, Any]]:
    """Each partition's and status's figures in ``wave`` (None: every result) from the
    totals: the rows status's StatusSummary is read from."""
    args = {"w": wave, "since": since}
    recent = {
        (int(r["part"]), str(r["status"])): int(r["recent"]) for r in conn.execute(_RECENT, args)
    }
    found = []
    for row in conn.execute(_KEPT, args).fetchall():
        key = (int(row["part"]), str(row["status"]))
        times = _times(conn, row, wave) if row["stale"] else None
        found.append(_summary_row(row, recent.get(key, 0), times))
    return found


def _times(conn: sqlite3.Connection, row: Any, wave: int | None) -> tuple[Any, Any]:
    """A stale group's first start and last end, counted again: of ``wave``'s results,
    or (None) of every result."""
    args = {"p": row["part"], "s": row["status"], "w": wave}
    if row["status"] == "failed":
        sql = _FAILED_TIMES
    elif row["unplaced"]:
        sql = _ANY_TIMES
    else:
        sql = _PLACED_TIMES if wave is None else _PLACED_WAVE_TIMES
    found = conn.execute(sql, args).fetchone()
    return found[0], found[1]


def recount(conn: sqlite3.Connection, wave_sql: str, since: str) -> list[dict[str, Any]]:
    """The same figures counted from every result (a store without totals; and the
    tests' check of the totals). ``wave_sql``: the condition keeping the wave's rows."""
    found = conn.execute(_RECOUNT.format(wave=wave_sql), {"since": since}).fetchall()
    return [_summary_row(r, int(r["recent"] or 0)) for r in found]


_WAVE_COUNTS = """SELECT wave AS w, SUM(done) AS done, SUM(ok) AS ok, SUM(changed) AS changed
    FROM (SELECT wave, users AS done, users * (status = 'ok') AS ok, changed
          FROM result_totals
          UNION ALL SELECT wave, done, ok, changed FROM history_totals)
    GROUP BY wave"""


def wave_counts(conn: sqlite3.Connection) -> list[Any]:
    """Each wave's results done, ok and lists changed (the rows ``_summaries_of`` reads,
    without times)."""
    return [
        {
            "w": r["w"],
            "done": r["done"],
            "ok": r["ok"],
            "changed": r["changed"],
            "first_start": None,
            "last_end": None,
        }
        for r in conn.execute(_WAVE_COUNTS)
    ]


_STALE = """SELECT wave, partition AS part, status, unplaced FROM result_totals
    WHERE stale_start OR stale_end"""


def heal(conn: sqlite3.Connection) -> None:
    """Count again the first start and last end of the groups whose row holding one went
    (a retried or replaced result), so readers need not: when the store is opened to write."""
    if conn.execute(_STALE + " LIMIT 1").fetchone() is None:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return  # another writer holds the store: readers count stale times themselves
    try:
        for row in conn.execute(_STALE).fetchall():
            first, last = _times(conn, row, int(row["wave"]))
            conn.execute(
                """UPDATE result_totals SET first_start = ?, last_end = ?, stale_start = 0,
                       stale_end = 0 WHERE wave = ? AND partition = ? AND status = ?""",
                (first, last, row["wave"], row["part"], row["status"]),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
