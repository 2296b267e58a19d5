"""The SQLite store's graph reads: friend lists with their targets resolved to the job's
ids, and the job's users as nodes; each one statement streamed in user id order.

A friend resolves to the job's user whose id or name equals it ignoring case (the
smallest id when several do; BigQuery's rule too). Resolving in the export, edge by edge,
capped exports at some 3,000 users a second, so each list is resolved once, when it is
saved (``friend_keys``, by ``sqlite_keys``), stamped with the generation of the job's
users it was resolved against; lists whose upstream ids are the job's ids need no
match (the fast path). Importing users starts a new generation, and the import matches
the lists saved before it again, in bulk (``sqlite_keys.rematch``). An export matches
any list still left (in a store of an older version, or saved as a run ended before
its filter of keys was ready) against the job's keys read once (``sqlite_match``).

Lists are kept compact (``lists_codec``): names and ids as blobs, keys as the sparse
pairs of the friends that resolve; rows of older versions keep their JSON text, read
alike. The export's own SQL walks a list of either kind through ``friendscrape_list``,
a function each connection of the store registers (``register``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from friendscrape.stores import lists_codec
from friendscrape.stores.base import EdgeList
from friendscrape.stores.sqlite_match import KeyMap, ListMatch
from friendscrape.stores.sqlite_schema import add_columns

EDGE_PAGE = 100
"""Friend lists fetched per call (some 10 KB of JSON each; the next page is read ahead)."""

# Added to a store when opened for writing; a store of an older version lacks them and is
# read by resolving every list in the export.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_generation (   -- one row: the job's users' generation
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO key_generation (id, generation) VALUES (1, 1);
CREATE TABLE IF NOT EXISTS key_changes (      -- the keys the latest import added or changed
    generation INTEGER NOT NULL,
    key TEXT NOT NULL                          -- folded as NOCASE folds (sqlite_match.fold)
);
"""
_COLUMNS = {
    # The job's id each friend resolves to: sparse pairs (lists_codec), or in stores of
    # older versions a JSON list aligned with friend_names (null where none)
    "friend_keys": "TEXT",
    # the key_generation friend_keys was resolved at; -1: not resolved
    "keys_gen": "INTEGER NOT NULL DEFAULT -1",
}

# Made by the plan (once, in bulk: kept up as users are imported they made a large import
# several times slower); lists are resolved at save only once they exist.
_INDEXES = """
CREATE INDEX IF NOT EXISTS users_id_nocase ON users (user_id COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS users_name_nocase ON users (screen_name COLLATE NOCASE, user_id);
CREATE INDEX IF NOT EXISTS user_friends_keys_gen ON user_friends (keys_gen);
"""
_INDEX_NAMES = ("users_id_nocase", "users_name_nocase", "user_friends_keys_gen")

# The job's id the key ``j.value`` resolves to, or null.
RESOLVE_ONE = """(SELECT min(k) FROM (
    SELECT min(user_id) AS k FROM users WHERE user_id = j.value COLLATE NOCASE
    UNION ALL
    SELECT min(user_id) FROM users
    WHERE screen_name = j.value COLLATE NOCASE AND screen_name <> ''
))"""

# One JSON list of keys in, the job's ids they resolve to out (null where none), in order.
_RESOLVE = f"SELECT json_group_array({RESOLVE_ONE}) FROM json_each(?) AS j"

# One row per collected user (``{order}``: the store's user order): its lists, the keys
# resolved at save when still current, and whether it takes the fast path (``direct``);
# the export matches the others itself (``sqlite_match``).
_EDGES = """
SELECT f.user_id, COALESCE(f.screen_name, '') AS screen_name, f.source,
       f.friend_names, f.friend_ids, {keys} AS keys, {direct} AS direct
FROM user_friends f
WHERE f.friend_count > 0 AND (:part IS NULL OR :part = COALESCE(
    (SELECT u.partition FROM users u WHERE u.user_id = f.user_id), f.partition, 0))
ORDER BY {{order}}
"""

# Columns named as BigQuery's ``nodes`` view names them (``rows.node_row`` reads both).
NODES_SQL = """
SELECT * FROM (
    SELECT u.user_id AS id, COALESCE(NULLIF(u.screen_name, ''), f.screen_name, '') AS name,
           COALESCE(f.status, 'pending') AS status,
           COALESCE(f.following_count, u.following_count) AS following_count,
           f.friend_count, COALESCE(f.truncated, 0) AS truncated,
           COALESCE(u.partition, f.partition, 0) AS partition, f.end_at AS collected_at
    FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
    UNION ALL
    SELECT f.user_id, COALESCE(f.screen_name, ''), f.status, f.following_count,
           f.friend_count, f.truncated, COALESCE(f.partition, 0), f.end_at
    FROM user_friends f
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = f.user_id)
)
WHERE :part IS NULL OR partition = :part
ORDER BY length(id), id
"""


LIST_SQL = "friendscrape_list"
"""The SQL function giving a stored list (blob or JSON text) as JSON text."""


def register(conn: sqlite3.Connection) -> None:
    """Let this connection's SQL read stored lists of either format (``LIST_SQL``)."""
    conn.create_function(LIST_SQL, 1, lists_codec.as_json, deterministic=True)


def migrate(conn: sqlite3.Connection) -> None:
    """Add the generation table and the resolved-keys columns (a store opened to write)."""
    conn.executescript(_SCHEMA)
    add_columns(conn, "user_friends", _COLUMNS)


def index_keys(conn: sqlite3.Connection) -> None:
    """Make the indexes lists are resolved with at save (run by the plan, in bulk)."""
    for statement in _INDEXES.split(";"):
        if statement.strip():
            conn.execute(statement)


MAX_CHANGED_KEYS = 100_000
"""Keys of one import recorded at most: past that, every list is matched again."""


def keys_changed(conn: sqlite3.Connection, changed: Collection[str] | None = None) -> None:
    """The job's users changed (an import): lists resolved before must be resolved again.
    ``changed``: the keys (``sqlite_match.fold``ed) the import added or changed, when
    known: lists resolved at the generation before that name none of them hold as they
    are (``sqlite_keys.rematch`` restamps them); None (or too many): every list is
    matched again."""
    conn.execute("UPDATE key_generation SET generation = generation + 1")
    conn.execute("DELETE FROM key_changes")
    if changed is None or not changed or len(changed) > MAX_CHANGED_KEYS:
        return
    if any("\0" in key for key in changed):
        return  # SQLite may compare such a key up to its NUL only: matched again in full
    gen = generation(conn)
    conn.executemany(
        "INSERT INTO key_changes (generation, key) VALUES (?, ?)", ((gen, k) for k in changed)
    )


def changed_keys(conn: sqlite3.Connection, gen: int) -> frozenset[bytes] | None:
    """The keys (folded, UTF-8) the import that began generation ``gen`` added or
    changed; None when not recorded (every list resolved before is matched again)."""
    try:
        found = conn.execute("SELECT key FROM key_changes WHERE generation = ?", (gen,))
        keys = frozenset(row[0].encode(errors="surrogatepass") for row in found)
    except sqlite3.OperationalError:
        return None
    return keys or None


def generation(conn: sqlite3.Connection) -> int | None:
    """The current generation of the job's users; None in a store of an older version."""
    try:
        row = conn.execute("SELECT generation FROM key_generation").fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0]) if row is not None else None


# The generation, with the count of the plan's indexes: one statement per save.
_CAN_RESOLVE = """SELECT (SELECT generation FROM key_generation), (SELECT count(*)
    FROM sqlite_master WHERE type = 'index' AND name IN ({marks}))""".format(
    marks=", ".join("?" * len(_INDEX_NAMES))
)


def can_resolve(conn: sqlite3.Connection) -> int | None:
    """The generation lists are resolved at, or None while the indexes are not made (or
    in a store of an older version)."""
    try:
        gen, made = conn.execute(_CAN_RESOLVE, _INDEX_NAMES).fetchone()
    except sqlite3.OperationalError:
        return None
    return int(gen) if gen is not None and made == len(_INDEX_NAMES) else None


def can_resolve_with(conn: sqlite3.Connection, expression: str) -> tuple[int | None, Any]:
    """``can_resolve`` and the value of the SQL ``expression``, read in one statement: a
    save needs both, and each statement lets go of the interpreter's lock and waits to
    take it back from the busy event loop (futex calls, and CPU)."""
    try:
        gen, made, value = conn.execute(f"{_CAN_RESOLVE}, ({expression})", _INDEX_NAMES).fetchone()
    except sqlite3.OperationalError:
        return None, conn.execute(f"SELECT {expression}").fetchone()[0]
    return (int(gen) if gen is not None and made == len(_INDEX_NAMES) else None), value


def resolve(conn: sqlite3.Connection, keys_json: str) -> str:
    """The job's id each key of the JSON list ``keys_json`` resolves to, or null, as the
    JSON list SQLite builds (stored as it is: no parse and dump on the save path)."""
    resolved: str = conn.execute(_RESOLVE, (keys_json,)).fetchone()[0]
    return resolved


def save_generation(conn: sqlite3.Connection, lists: Sequence[tuple[str, str]]) -> int | None:
    """The generation a save's (friend_names, friend_ids) JSON pairs are resolved at;
    None when none is: every list carries upstream ids, or the store cannot resolve at
    save. Call inside the save's transaction."""
    # A save of lists that all carry upstream ids never needs the generation.
    return can_resolve(conn) if any(ids == "[]" for _, ids in lists) else None


def stored_keys(conn: sqlite3.Connection, keys_json: str) -> bytes:
    """``resolve``'s keys of the JSON list ``keys_json`` as friend_keys keeps them."""
    return lists_codec.encode_keys(lists_codec.sparse(resolve(conn, keys_json)))


def resolved_list(
    conn: sqlite3.Connection, names: str, ids: str, gen: int
) -> tuple[bytes | None, int]:
    """One list's friend_keys and the generation they hold for (``gen``, from
    ``save_generation``), given its names and ids as JSON text. Only names-only lists
    (twitter-mobile) are resolved here; a list with upstream ids gets (None, -1) and is
    resolved by the export."""
    if names == "[]":
        return (lists_codec.encode_keys(()), gen)
    if ids != "[]":
        # A list with upstream ids (x-api, Bluesky, Mastodon) is left to the export:
        # two index probes per friend cost about 4 ms of CPU for a page of 1,000,
        # several times what fetching and parsing that page costs.
        return (None, -1)
    return (stored_keys(conn, names), gen)


def resolved_keys(
    conn: sqlite3.Connection, lists: Sequence[tuple[str, str]]
) -> list[tuple[bytes | None, int]]:
    """For each (friend_names, friend_ids) JSON pair about to be saved: its friend_keys
    and the generation they hold for (``resolved_list``); every list gets (None, -1)
    while the store cannot resolve at save. Call inside the save's transaction."""
    gen = save_generation(conn, lists)
    if gen is None:
        return [(None, -1)] * len(lists)
    return [resolved_list(conn, names, ids, gen) for names, ids in lists]


# Where every user id of the job is of a platform's own kind (x-api's numeric ids,
# Bluesky's DIDs, Mastodon's ID@INSTANCE), a friend's upstream id is the job's key for it:
# counted in one pass over the users (a platform whose shape not every id has is 0).
_UPSTREAM_SHAPES = {
    "x-api": "user_id <> '' AND user_id NOT GLOB '*[^0-9]*'",
    "bluesky": "user_id GLOB 'did:[a-z]*:?*'",
    "mastodon": """user_id GLOB '[0-9]*@?*' AND user_id NOT GLOB '*@*@*'
        AND substr(user_id, 1, instr(user_id, '@') - 1) NOT GLOB '*[^0-9]*'""",
}
_SHAPES = "SELECT count(*), {sums} FROM users".format(
    sums=", ".join(f"coalesce(sum({shape}), 0)" for shape in _UPSTREAM_SHAPES.values())
)


def upstream_platforms(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The platforms whose upstream ids every user id of the job is (none for a job
    without users, or one that holds users of any other kind)."""
    count, *shaped = conn.execute(_SHAPES).fetchone()
    if not count:
        return ()
    return tuple(p for p, n in zip(_UPSTREAM_SHAPES, shaped, strict=True) if n == count)


class JobIds:
    """The job's user ids, read when first asked for (only ``--within`` asks: a million
    ids take some 60 MB) on a read-only connection of their own, as the export runs."""

    __slots__ = ("_ids", "_lock", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._ids: frozenset[str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, conn: sqlite3.Connection) -> JobIds:
        """The ids of the store ``conn`` has open (its main database file)."""
        path: str = conn.execute("PRAGMA database_list").fetchone()[2]
        return cls(path)

    def get(self) -> frozenset[str]:
        """Every user id of the job."""
        with self._lock:
            if self._ids is None:
                uri = f"{Path(self._path).resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True)
                try:
                    self._ids = frozenset(r[0] for r in conn.execute("SELECT user_id FROM users"))
                finally:
                    conn.close()
            return self._ids


_NO_IDS = JobIds("")
_NO_KEYS = KeyMap("")


@dataclass(frozen=True, slots=True)
class EdgesQuery:
    """The edges statement (``{order}`` left to fill, ``part`` to set), and the job's ids
    that the lists it marks ``direct`` are matched against by their upstream ids alone:
    the fast path, with no look-up in SQL."""

    sql: str
    params: dict[str, Any]
    job_ids: JobIds = _NO_IDS
    key_map: ListMatch = _NO_KEYS


def _stale(conn: sqlite3.Connection, gen: int | None, have: set[str]) -> bool:
    """Whether some list is not resolved at the current generation (every list of a
    store of an older version)."""
    if gen is None or "keys_gen" not in have:
        return True
    found = conn.execute(
        "SELECT 1 FROM user_friends WHERE keys_gen < ? AND friend_count > 0 LIMIT 1", (gen,)
    ).fetchone()
    return found is not None


def recorded_platform(conn: sqlite3.Connection) -> str | None:
    """The job's platform when recorded (None in a store that records none)."""
    # The one name looked up, not every table's read: each row read lets go of the
    # interpreter's lock and takes it back (the save's key filter reads this in a thread
    # of its own while the run's loop is busy, a few futex calls a row).
    has_job = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job'"
    ).fetchone()
    if has_job is None:
        return None
    found = conn.execute("SELECT value FROM job WHERE key = 'platform'").fetchone()
    return None if found is None else str(found[0])


def direct_platforms(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The platforms whose lists take the fast path: the job's (when recorded) if every
    user id is of its kind, else every platform whose kind they all are."""
    shaped = upstream_platforms(conn)
    if shaped:
        recorded = recorded_platform(conn)
        if recorded is not None:
            return tuple(p for p in shaped if p == recorded)
    return shaped


def _direct_sql(platforms: tuple[str, ...], keys: str) -> str:
    """SQL true for a list that takes the fast path: not resolved at save, with upstream
    ids, of one of ``platforms`` (typeof first: it reads no blob)."""
    if not platforms:
        return "0"
    marks = ", ".join(f"'{p}'" for p in platforms)  # platform names hold no quote
    return f"""({keys} IS NULL AND f.source IN ({marks})
        AND (typeof(f.friend_ids) = 'blob' OR f.friend_ids <> '[]'))"""


def _resolving(conn: sqlite3.Connection, gen: int | None, current: bool, direct: str) -> bool:
    """Whether some list the export must resolve itself is off the fast path (a pass
    over the lists not resolved at save that reads none of their blobs)."""
    stale = "f.keys_gen < :gen AND " if current else ""
    found = conn.execute(
        f"SELECT 1 FROM user_friends f WHERE {stale}f.friend_count > 0 AND NOT {direct} LIMIT 1",
        {"gen": gen},
    ).fetchone()
    return found is not None


def edges_query(conn: sqlite3.Connection) -> EdgesQuery:
    """The edges statement for this store: lists resolved at save are read as they are.
    Of the others, lists with upstream ids of a job whose user ids are that platform's
    own ids take the fast path (``EdgesQuery.job_ids``, the ``direct`` column); the
    export matches the rest against the job's keys read once (``EdgesQuery.key_map``)."""
    gen = generation(conn)
    have = {row[1] for row in conn.execute("PRAGMA table_info(user_friends)")}
    current = "keys_gen" in have and gen is not None
    keys = "CASE WHEN f.keys_gen = :gen THEN f.friend_keys END" if current else "NULL"
    if not _stale(conn, gen, have):
        return EdgesQuery(_EDGES.format(keys=keys, direct="0"), {"gen": gen})
    platforms = direct_platforms(conn)
    direct = _direct_sql(platforms, keys)
    job_ids = JobIds.of(conn) if platforms else _NO_IDS
    sql = _EDGES.format(keys=keys, direct=direct)
    if platforms and not _resolving(conn, gen, current, direct):
        # Every list is resolved at save or takes the fast path: no keys to read.
        return EdgesQuery(sql, {"gen": gen}, job_ids)
    return EdgesQuery(sql, {"gen": gen}, job_ids, KeyMap.of(conn))


def edge_list(row: sqlite3.Row, query: EdgesQuery | None = None) -> EdgeList:
    """An EdgeList from one row of the edges statement: the keys resolved at save, else
    (the fast path) the upstream ids that are the job's ids, else the export's own
    matches; a friend no user of the job is named by its upstream id."""
    names = lists_codec.decode(row["friend_names"])
    raw_ids = row["friend_ids"]
    ids = lists_codec.decode(raw_ids) if raw_ids != lists_codec.EMPTY else []
    if ids and len(ids) != len(names):
        ids = []  # ids that do not pair with their names (no source saves such) name nobody
    keys = row["keys"]
    targets: list[str]
    known: Sequence[bool]
    if keys is not None:
        targets, known = _from_pairs(lists_codec.key_pairs(keys), names, ids)
    elif row["direct"]:
        # The fast path: a friend is the job's user whose id is its upstream id.
        targets, known = _direct_targets(ids, query.job_ids if query else _NO_IDS)
        if not ids:
            targets, known = [""] * len(names), [False] * len(names)
    else:
        targets, known = (query.key_map if query else _NO_KEYS).match(names, ids)
    return EdgeList(
        source_id=row["user_id"],
        source_name=row["screen_name"],
        platform=row["source"],
        names=names,
        targets=targets,
        known=known,
    )


def _from_pairs(
    pairs: list[tuple[int, str]], names: list[str], ids: list[str]
) -> tuple[list[str], list[bool]]:
    """Targets and known flags from the keys resolved at save: set friend by friend only
    where one is a user of the job (most are not), the rest filled in bulk."""
    targets = ids if ids else [""] * len(names)
    known = [False] * len(names)
    for position, key in pairs:
        targets[position] = key
        known[position] = True
    return targets, known


class JobMembers(Sequence[bool]):
    """Whether each upstream id of a list is one of the job's ids, worked out when first
    read: only ``--within`` reads it, and the test of every friend would be a third of
    what the fast path's export costs otherwise."""

    __slots__ = ("_flags", "_ids", "_job_ids")

    def __init__(self, ids: list[str], job_ids: JobIds) -> None:
        self._ids = ids
        self._job_ids = job_ids
        self._flags: list[bool] | None = None

    def _all(self) -> list[bool]:
        if self._flags is None:
            self._flags = list(map(self._job_ids.get().__contains__, self._ids))
        return self._flags

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> bool: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bool]: ...
    def __getitem__(self, index: int | slice) -> bool | Sequence[bool]:
        return self._all()[index]

    def __iter__(self) -> Iterator[bool]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._all() == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, as a list is

    def __repr__(self) -> str:
        return repr(self._all())


def _direct_targets(ids: list[str], job_ids: JobIds) -> tuple[list[str], Sequence[bool]]:
    """The fast path's targets (the upstream ids themselves) and which are the job's."""
    return ids, JobMembers(ids, job_ids)
