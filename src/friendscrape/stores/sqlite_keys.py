"""Save-time matching of names-only friend lists (twitter-mobile) to the job's users in
the SQLite store, with a filter of the job's keys kept per connection.

Most friends of a job's users are not users of the job, yet SQLite's match costs two
index look-ups per name (some 2-4 microseconds; 60-80 per page of 20 names). A Bloom
filter of the job's ids and names, folded to lower case, tells in a fraction of that
that a name matches nobody; only the other names are looked up, with the same SQL rule
as before, so the stored lists are byte for byte what SQLite alone builds. The filter is
stamped with the generation of the job's users it was built from and used only while
that generation is current (an import in another process starts a new one).

The filter of a job of more than ``_BUILD_HERE`` users is built in a thread of its own,
on a connection of its own, started by the first save that needs it: at 3.6M users
reading them takes some 7 s of CPU (20-30 s on a busy machine), and built on the store's
connection it held every call of the store, the run's first save among them, until it
was done. Saves made meanwhile let SQLite match every name, as saves did before the
filter: the same keys, for more CPU. A smaller job's filter is built by that first save
itself, on its connection."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

import msgspec

from friendscrape.stores import lists_codec
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores.sqlite_match import ListMatch

_MAX_USERS = 4_000_000
"""Above this many users no filter is built (16 MB, some 7 s of CPU to read, holding
the store meanwhile): every name is looked up."""

_FEW = 0.1
"""A list more of whose names pass the filter is matched in one statement of its own."""

_SAMPLE = 32
"""A list more than half of whose first names pass the filter is left to SQLite alone."""

_BITS_PER_KEY = 16
"""With two probes about 1.4 % of the names that match no user pass the filter."""

_BUILD_HERE = 20_000
"""Up to this many users the filter is built on the save's connection, by the first save
that needs it (some 10 ms of CPU): a connection of its own costs more (opening it parses
the store's schema) and its thread, meeting the store's in SQLite's own locks while the
first saves go on, made some 600 system calls (futex) in a run of 1,500 x-api users."""

_CHECK_STOP = 1 << 16
"""Users read between two looks at whether the store is closing."""

# The keys of candidate names (``j.key``: their place in the list sent) and what each
# resolves to (NULL where none).
_PROBE = f"SELECT j.key, {graph.RESOLVE_ONE} FROM json_each(?) AS j"

_NONE_RESOLVE = lists_codec.encode_keys(())
"""The keys of a list none of whose friends is a user of the job."""


class KeyFilter:
    """Which names may equal (ignoring case) an id or a name of the job's users: never
    wrong about a name that does."""

    __slots__ = ("_bits", "_mask", "direct", "generation", "passes_all")

    def __init__(
        self,
        generation: int,
        keys: int,
        *,
        passes_all: bool = False,
        direct: tuple[str, ...] = (),
    ) -> None:
        size = 1 << 12
        while size < keys * _BITS_PER_KEY and not passes_all:
            size <<= 1
        self.generation = generation
        self.passes_all = passes_all  # a job too large for a filter: every name is looked up
        # The platforms whose lists take the export's fast path (``sqlite_graph``): their
        # upstream ids are the job's ids, nothing to match at save.
        self.direct = direct
        self._bits = bytearray(size >> 3)
        self._mask = size - 1

    def add(self, key: str) -> None:
        """Let ``key`` (and any name equal to it ignoring case) pass."""
        h = hash(key.lower())
        for bit in (h & self._mask, (h >> 32) & self._mask):
            self._bits[bit >> 3] |= 1 << (bit & 7)

    def candidates(self, names: Sequence[str]) -> list[str]:
        """The names that may match a user. SQLite's NOCASE folds ASCII letters only;
        two names equal under it are equal under str.lower too, so none is dropped."""
        bits, mask = self._bits, self._mask
        out = []
        for name in names:
            h = hash(name.lower())
            a = h & mask
            if bits[a >> 3] >> (a & 7) & 1:
                b = (h >> 32) & mask
                if bits[b >> 3] >> (b & 7) & 1:
                    out.append(name)
        return out


def _build(conn: sqlite3.Connection, stop: threading.Event | None = None) -> KeyFilter | None:
    """A filter of the job's keys at the current generation, read in one snapshot (one
    that passes every name when the job is too large); None while lists are not resolved
    at save, or when ``stop`` is set meanwhile (the store is closing)."""
    conn.execute("BEGIN")
    try:
        gen = graph.can_resolve(conn)
        if gen is None:
            return None
        direct = graph.direct_platforms(conn)
        if graph.recorded_platform(conn) in direct:
            # The job's own lists all take the fast path: no key of it is looked up.
            return KeyFilter(gen, 0, passes_all=True, direct=direct)
        count = int(conn.execute("SELECT count(*) FROM users").fetchone()[0])
        if count > _MAX_USERS:
            return KeyFilter(gen, 0, passes_all=True, direct=direct)
        keys = KeyFilter(gen, 2 * count, direct=direct)
        add = keys.add
        after = None
        while chunk := _users_after(conn, after):
            if stop is not None and stop.is_set():
                return None
            ids, names, after = chunk
            for user_id, name in zip(ids, names, strict=True):
                add(user_id)
                if name:  # an empty name matches nobody (the SQL rule's screen_name <> '')
                    add(name)
        return keys
    finally:
        conn.execute("COMMIT")


# Up to _CHECK_STOP users after a rowid, as two JSON arrays: one row read a chunk.
_USERS_AFTER = """SELECT json_group_array(user_id), json_group_array(screen_name), max(r)
    FROM (SELECT rowid AS r, user_id, screen_name FROM users WHERE rowid > ?
          ORDER BY rowid LIMIT ?)"""


def _users_after(
    conn: sqlite3.Connection, after: int | None
) -> tuple[list[str], list[str], int] | None:
    """The ids and names of the next users in rowid order (None: no more). Read a chunk
    to a row, not a row a user: each row read lets go of the interpreter's lock and
    takes it back, and this thread reads while the run's busy loop holds it (the lock
    handed back and forth, a few futex calls a user)."""
    start = -(1 << 63) if after is None else after
    ids, names, last = conn.execute(_USERS_AFTER, (start, _CHECK_STOP)).fetchone()
    if last is None:
        return None
    return msgspec.json.decode(ids), msgspec.json.decode(names), int(last)


def _few_users(conn: sqlite3.Connection) -> bool:
    """Whether the job has at most ``_BUILD_HERE`` users (counted no further)."""
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM users LIMIT ?)", (_BUILD_HERE + 1,)
    ).fetchone()
    return int(found[0]) <= _BUILD_HERE


def _build_apart(
    connect: Callable[[], sqlite3.Connection], stop: threading.Event, done: Future[KeyFilter | None]
) -> None:
    """``_build`` on a connection of its own; its outcome (a failure to read: None) in
    ``done``; a failure to read (None) leaves every name to SQLite."""
    try:
        conn = connect()
        try:
            done.set_result(_build(conn, stop))
        finally:
            conn.close()
    except sqlite3.Error:
        pass
    finally:
        if not done.done():
            done.set_result(None)


class SaveMatcher:
    """Resolves the lists of each save of one connection (calls come one at a time).
    ``connect`` opens another connection to the store, which the filter is built on in
    a thread of its own; without it the filter is built on the save's connection."""

    __slots__ = ("_behind", "_building", "_connect", "_filter", "_stale", "_stop", "_thread")

    def __init__(self, connect: Callable[[], sqlite3.Connection] | None = None) -> None:
        self._filter: KeyFilter | None = None
        self._stale = True
        # The users whose lists with upstream ids were saved without a filter, unmatched:
        # once one is ready, each save matches a few of them (``_CATCH_UP``).
        self._behind: list[tuple[str, str]] = []  # (user id, platform)
        self._connect = connect
        self._building: Future[KeyFilter | None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prepare(self, conn: sqlite3.Connection, lists: Sequence[tuple[str, str]]) -> None:
        """Before a save's transaction: take the filter a thread finished, and start
        building one when the last save found it missing or outdated (never waited for:
        until it is done, SQLite matches every name)."""
        building = self._building
        if building is not None:
            if not building.done():
                return
            # Done: its generation is checked at each save like any filter's.
            self._building = None
            self._filter = building.result()
            self._stale = False
        if not self._stale or not any(names != "[]" for names, _ in lists):
            return
        self._stale = False
        if self._connect is None or _few_users(conn):
            self._filter = _build(conn)
            return
        done: Future[KeyFilter | None] = Future()
        self._building = done
        self._thread = threading.Thread(
            target=_build_apart,
            args=(self._connect, self._stop, done),
            name="friendscrape-key-filter",
            daemon=True,
        )
        self._thread.start()

    def leaves_to_export(self, source: str) -> bool:
        """Whether this save's lists with upstream ids from ``source`` are left unread
        (their JSON text is then never needed), as known once ``prepare`` took the filter:
        without one they are left to later saves or ``rematch``; with one, to the export's
        fast path when ``source`` takes it."""
        return self._filter is None or source in self._filter.direct

    def close(self) -> None:
        """Stop a filter being built (the store is closing) and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._building is not None:
            self._building = None
            self._stale = True  # stopped half-way: built again when the store reopens
        self._stop = threading.Event()

    def resolved_keys(
        self,
        conn: sqlite3.Connection,
        lists: Sequence[tuple[str, str]],
        names: Sequence[Sequence[str]],
        *,
        ids: Sequence[Sequence[str]] | None = None,
        sources: Sequence[str] | None = None,
        users: Sequence[str] | None = None,
        gen: int | EllipsisType | None = ...,
    ) -> list[tuple[bytes | None, int]]:
        """For each (friend_names, friend_ids) JSON pair about to be saved (``names``:
        the same names as Python strings): its friend_keys and the generation they hold
        for, byte for byte as ``sqlite_graph.resolved_keys`` gives names-only lists, the
        generation read once. Given ``ids`` and ``sources`` (the same lists' upstream ids
        and platforms), lists with upstream ids are matched too, unless they take the
        export's fast path; those saved before the filter is ready are matched by later
        saves, given ``users`` (whose lists they are). ``gen``: the generation, when the
        caller read it (``sqlite_graph.can_resolve``) in the transaction. Call inside the
        save's transaction."""
        with_ids = ids is not None and sources is not None
        if isinstance(gen, EllipsisType):
            gen = graph.can_resolve(conn) if with_ids else graph.save_generation(conn, lists)
        if gen is None:
            return [(None, -1)] * len(lists)
        keys = self._filter
        if keys is None or keys.generation != gen:
            # Built for older users, or not yet: SQLite matches every name this time (a
            # filter being built is taken when it is done); lists with upstream ids are
            # left to be matched later (``rematch``).
            self._stale = self._building is None
            keys = None
        if ids is None or sources is None:
            return _matched(conn, keys, gen, lists, names, ids=None, sources=None)
        if keys is None and users is not None:
            self._behind += [
                (u, s) for u, s, (n, i) in zip(users, sources, lists, strict=True) if n != "[]" != i
            ]
        elif keys is not None and self._behind:
            left = [u for u, s in self._behind[-_CATCH_UP:] if s not in keys.direct]
            del self._behind[-_CATCH_UP:]
            if left:
                _rematch_users(conn, keys, left)
        return _matched(conn, keys, gen, lists, names, ids=ids, sources=sources)


def _matched(
    conn: sqlite3.Connection,
    keys: KeyFilter | None,
    gen: int,
    lists: Sequence[tuple[str, str]],
    names: Sequence[Sequence[str]],
    *,
    ids: Sequence[Sequence[str]] | None,
    sources: Sequence[str] | None,
) -> list[tuple[bytes | None, int]]:
    """``SaveMatcher.resolved_keys`` once the generation and the filter (None: none
    current) are known; lists with upstream ids are matched only given ``ids`` and
    ``sources``, and never without a filter (SQLite would look up 4 keys a friend)."""
    if keys is None or keys.passes_all:
        out = [graph.resolved_list(conn, names_json, i, gen) for names_json, i in lists]
        if keys is None or sources is None:
            return out
        return [
            _sql_pairs(conn, lists[k], gen) if _matched_here(keys, lists[k], sources[k]) else o
            for k, o in enumerate(out)
        ]
    batch = _Batch(conn, keys, gen)
    for i, pair in enumerate(lists):
        if ids is not None and sources is not None and pair[1] != "[]":
            batch.add_with_ids(pair, names[i], ids[i], sources[i])
        else:
            batch.add(pair, names[i])
    return batch.finish()


def _matched_here(keys: KeyFilter, pair: tuple[str, str], source: str) -> bool:
    """Whether a list with upstream ids is matched at save: not empty, not on the fast
    path."""
    names_json, ids_json = pair
    return names_json != "[]" and ids_json != "[]" and source not in keys.direct


def _sql_pairs(conn: sqlite3.Connection, pair: tuple[str, str], gen: int) -> tuple[bytes, int]:
    """A list with upstream ids matched by SQLite alone: each friend by its upstream id,
    else by its name (two statements, for lists the filter cannot take)."""
    names_json, ids_json = pair
    by_id: list[str | None] = msgspec.json.decode(graph.resolve(conn, ids_json))
    by_name: list[str | None] = msgspec.json.decode(graph.resolve(conn, names_json))
    if len(by_id) != len(by_name):
        by_id = [None] * len(by_name)  # ids that do not pair with names name nobody
    pairs = [(p, k) for p, k in enumerate(map(_first, by_id, by_name)) if k is not None]
    return (lists_codec.encode_keys(pairs, deflate=False), gen)


def _first(a: str | None, b: str | None) -> str | None:
    return a if a is not None else b


class _Batch:
    """The lists of one save (or one step of ``rematch``): the job's keys that pass the
    filter are looked up together, in one statement, at ``finish``."""

    __slots__ = ("_conn", "_gen", "_keys", "_out", "_pending", "_pending_ids", "_wanted")

    def __init__(self, conn: sqlite3.Connection, keys: KeyFilter, gen: int) -> None:
        self._conn = conn
        self._keys = keys
        self._gen = gen
        self._out: list[tuple[bytes | None, int]] = []
        self._wanted: dict[str, None] = {}
        self._pending: list[tuple[int, Sequence[str]]] = []
        self._pending_ids: list[tuple[int, Sequence[str], Sequence[str]]] = []

    def add(self, pair: tuple[str, str], names: Sequence[str]) -> None:
        """A names-only list (or one with ids the save leaves to the export)."""
        names_json, ids = pair
        conn, keys, gen = self._conn, self._keys, self._gen
        if (
            # Empty, with upstream ids, or a name holding NUL, which SQLite compares
            # only up to the NUL: as SQLite alone does.
            names_json == "[]"
            or ids != "[]"
            or "\\u0000" in names_json
            # Mostly the job's users: the filter would save nothing.
            or len(keys.candidates(names[:_SAMPLE])) * 2 > _SAMPLE
        ):
            self._out.append(graph.resolved_list(conn, names_json, ids, gen))
            return
        found = keys.candidates(names)
        if len(found) > len(names) * _FEW:
            # Many may match: SQLite matches the list, its other names sent as null
            # (json_group_array writes null for them, as for a name matching none).
            mask = set(found)
            masked = [n if n in mask else None for n in names]
            self._out.append((graph.stored_keys(conn, msgspec.json.encode(masked).decode()), gen))
            return
        if found:
            self._wanted.update(dict.fromkeys(found))
            self._pending.append((len(self._out), names))
        self._out.append((_NONE_RESOLVE, gen))

    def add_with_ids(
        self, pair: tuple[str, str], names: Sequence[str], ids: Sequence[str], source: str
    ) -> None:
        """A list with upstream ids: left for the fast path, or each friend matched by
        its upstream id, else by its name."""
        if not _matched_here(self._keys, pair, source):
            self._out.append((None, -1))
            return
        if "\\u0000" in pair[0] or "\\u0000" in pair[1] or len(ids) != len(names):
            self._out.append(_sql_pairs(self._conn, pair, self._gen))
            return
        found = self._keys.candidates(ids) + self._keys.candidates(names)
        if found:
            self._wanted.update(dict.fromkeys(found))
            self._pending_ids.append((len(self._out), names, ids))
        self._out.append((_NONE_RESOLVE, self._gen))

    def finish(self) -> list[tuple[bytes | None, int]]:
        """Every list's friend_keys and generation, in the order added."""
        out = self._out
        if not self._wanted:
            return out
        order = list(self._wanted)
        found = self._conn.execute(_PROBE, (msgspec.json.encode(order).decode(),))
        got = {order[k]: v for k, v in found if v is not None}.get
        gen = self._gen
        for i, names in self._pending:
            pairs = [(p, key) for p, n in enumerate(names) if (key := got(n)) is not None]
            out[i] = (lists_codec.encode_keys(pairs), gen)
        for i, names, ids in self._pending_ids:
            pairs = [
                (p, key)
                for p, (u, n) in enumerate(zip(ids, names, strict=True))
                if (key := got(u) or got(n)) is not None
            ]
            # Not deflated, as these lists' names and ids are not: deflating some 8 KB of
            # keys (550 friends, half of them the job's) cost some 150 us a list at save
            # (a seventh of matching it) and some 8% of the CPU of its export.
            out[i] = (lists_codec.encode_keys(pairs, deflate=False), gen)
        return out


_REMATCH_STEP = 256
"""Lists matched again per transaction (each holds the store for some tens of ms)."""

_CATCH_UP = 16
"""Lists left unmatched (saved while no filter was ready) that a save matches."""

# The lists an import left matched at an older generation (or never matched), but for
# those of the fast path (``{fast}``), in user id order from ``:after``.
_STALE = """SELECT f.user_id, f.friend_names, f.friend_ids, f.source, f.keys_gen
FROM user_friends f
WHERE f.keys_gen < :gen AND f.friend_count > 0 AND f.user_id > :after AND NOT {fast}
ORDER BY f.user_id LIMIT :step"""


def _fast_sql(direct: tuple[str, ...]) -> str:
    """SQL true for a list of the fast path (as ``sqlite_graph`` marks it, keys aside)."""
    if not direct:
        return "0"
    marks = ", ".join(f"'{p}'" for p in direct)  # platform names hold no quote
    return f"""(f.source IN ({marks})
        AND (typeof(f.friend_ids) = 'blob' OR f.friend_ids <> '[]'))"""


@dataclass(frozen=True, slots=True)
class Rematched:
    """What ``rematch`` did: lists matched again, and lists kept as they were (they name
    no key the import added or changed), restamped at the current generation."""

    matched: int = 0
    kept: int = 0


def rematch(conn: sqlite3.Connection) -> Rematched:
    """Match again, in bulk and once, the lists saved before the job's users changed (an
    import) and those saved before the save's filter was ready: each stored with the
    job's ids it resolves to at the current generation, so that exports read them as
    lists matched at save. A list matched at the generation before, naming (by upstream
    id or name, ignoring case) none of the keys the import added or changed, resolves as
    it did: only restamped (the import records those keys; ``sqlite_graph.keys_changed``).
    Lists of the fast path are left as they are. Nothing while lists are not matched at
    save (no plan yet). Stops when the users change meanwhile (the import that changed
    them matches them again)."""
    keys = _build(conn)
    if keys is None:
        return Rematched()
    changed = graph.changed_keys(conn, keys.generation)
    after: str | None = ""
    matched = kept = 0
    while after is not None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if graph.can_resolve(conn) != keys.generation:
                break
            rows = conn.execute(
                _STALE.format(fast=_fast_sql(keys.direct)),
                {"gen": keys.generation, "after": after, "step": _REMATCH_STEP},
            ).fetchall()
            same = _unchanged(rows, keys.generation, changed)
            _restamp(conn, keys.generation, same)
            _rematch_rows(conn, keys, [r for r in rows if r[0] not in same])
        finally:
            conn.execute("COMMIT")
        matched += len(rows) - len(same)
        kept += len(same)
        after = str(rows[-1][0]) if len(rows) == _REMATCH_STEP else None
    return Rematched(matched, kept)


def _unchanged(rows: list[tuple[Any, ...]], gen: int, changed: frozenset[bytes] | None) -> set[str]:
    """The users of ``rows`` whose lists, matched at the generation before ``gen``, name
    none of the ``changed`` keys: their keys hold as they are."""
    if changed is None:
        return set()
    same = set()
    for user_id, names, ids, _source, kgen in rows:
        if kgen != gen - 1:
            continue
        folded = [lists_codec.folded_values(names), lists_codec.folded_values(ids)]
        if all(v is not None and changed.isdisjoint(v) for v in folded):
            same.add(user_id)
    return same


def _restamp(conn: sqlite3.Connection, gen: int, users: set[str]) -> None:
    """Mark the lists of ``users`` matched at ``gen`` as they are (SQLite rewrites only
    the changed bytes of a row of the same size: their lists are not written again)."""
    conn.executemany(
        "UPDATE user_friends SET keys_gen = ? WHERE user_id = ?", [(gen, u) for u in users]
    )


# The lists of some users (``{marks}``) not matched at the current generation.
_STALE_OF = """SELECT f.user_id, f.friend_names, f.friend_ids, f.source FROM user_friends f
WHERE f.user_id IN ({marks}) AND f.keys_gen < ? AND f.friend_count > 0 AND NOT {fast}"""


def _rematch_users(conn: sqlite3.Connection, keys: KeyFilter, users: list[str]) -> None:
    """Match the lists of ``users`` still unmatched (in the caller's transaction)."""
    sql = _STALE_OF.format(marks=", ".join("?" * len(users)), fast=_fast_sql(keys.direct))
    _rematch_rows(conn, keys, conn.execute(sql, (*users, keys.generation)).fetchall())


def _rematch_rows(conn: sqlite3.Connection, keys: KeyFilter, rows: list[tuple[Any, ...]]) -> None:
    """Match one step's stored lists and store their keys."""
    if not rows:
        return
    names = [lists_codec.decode(r[1]) for r in rows]
    ids = [lists_codec.decode(r[2]) if r[2] != lists_codec.EMPTY else [] for r in rows]
    lists = [
        (msgspec.json.encode(n).decode(), msgspec.json.encode(i).decode())
        for n, i in zip(names, ids, strict=True)
    ]
    sources = [r[3] for r in rows]
    found = _matched(conn, keys, keys.generation, lists, names, ids=ids, sources=sources)
    conn.executemany(
        "UPDATE user_friends SET friend_keys = ?, keys_gen = ? WHERE user_id = ?",
        [(k, g, r[0]) for (k, g), r in zip(found, rows, strict=True) if k is not None],
    )


_DICT_USERS = 200_000
"""Up to this many users an export matches the lists left unmatched against every key of
the job in a dict (``sqlite_match.KeyMap``, some 190 bytes a user: under 40 MB); above
it, against the filter, in bounded memory."""


class ExportKeys:
    """The export's match of the lists left unmatched at save, in a store that matches
    at save: the filter of the job's keys (some 4 MB at a million users, where a dict of
    every key took some 190 MB) built on a read-only connection of the export's own,
    and one look-up statement per list for the keys that pass it, by the save's rule.
    A store that cannot match at save (an older version's), or of a small job, is matched
    by ``fallback``."""

    __slots__ = ("_conn", "_fallback", "_keys", "_lock", "_path")

    def __init__(self, path: str, fallback: ListMatch) -> None:
        self._path = path
        self._fallback = fallback
        self._conn: sqlite3.Connection | None = None
        self._keys: KeyFilter | None = None
        self._lock = threading.Lock()

    def _ready(self) -> tuple[sqlite3.Connection, KeyFilter] | None:
        if self._conn is None:
            uri = f"{Path(self._path).resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._conn = conn
            users = int(conn.execute("SELECT count(*) FROM users").fetchone()[0])
            # A small job's keys fit in memory: matched against them, some 4x faster.
            self._keys = _build(conn) if users > _DICT_USERS else None
        return None if self._keys is None else (self._conn, self._keys)

    def match(self, names: list[str], ids: list[str]) -> tuple[list[str], list[bool]]:
        """One list's targets and known flags, as ``sqlite_match.match`` gives them."""
        with self._lock:
            ready = self._ready()
            if ready is None:
                return self._fallback.match(names, ids)
            conn, keys = ready
            pair = (msgspec.json.encode(names).decode(), msgspec.json.encode(ids).decode())
            ((stored, _),) = _matched(
                conn, keys, keys.generation, [pair], [names], ids=[ids], sources=[""]
            )
        known = [False] * len(names)
        targets = list(ids) if ids else [""] * len(names)
        for position, key in lists_codec.key_pairs(stored or _NONE_RESOLVE):
            targets[position] = key
            known[position] = True
        return targets, known

    def close(self) -> None:
        """Close the connection the filter was read on."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._fallback.close()
