"""Save-time matching of names-only friend lists (twitter-mobile) to the job's users in
the SQLite store, with a filter of the job's keys kept per connection.

Most friends of a job's users are not users of the job, yet SQLite's match costs two
index look-ups per name (some 2-4 microseconds; 60-80 per page of 20 names). A Bloom
filter of the job's ids and names, folded to lower case, tells in a fraction of that
that a name matches nobody; only the other names are looked up, with the same SQL rule
as before, so the stored lists are byte for byte what SQLite alone builds. The filter is
stamped with the generation of the job's users it was built from and used only while
that generation is current (an import in another process starts a new one).

The filter is built in a thread of its own, on a connection of its own, started by the
first save that needs it: at 3.6M users reading them takes some 7 s of CPU (20-30 s on
a busy machine), and built on the store's connection it held every call of the store,
the run's first save among them, until it was done. Saves made meanwhile let SQLite
match every name, as saves did before the filter: the same keys, for more CPU."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import msgspec

from friendscrape.stores import lists_codec
from friendscrape.stores import sqlite_graph as graph

_MAX_USERS = 4_000_000
"""Above this many users no filter is built (16 MB, some 7 s of CPU to read, holding
the store meanwhile): every name is looked up."""

_FEW = 0.1
"""A list more of whose names pass the filter is matched in one statement of its own."""

_SAMPLE = 32
"""A list more than half of whose first names pass the filter is left to SQLite alone."""

_BITS_PER_KEY = 16
"""With two probes about 1.4 % of the names that match no user pass the filter."""

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

    __slots__ = ("_bits", "_mask", "generation", "passes_all")

    def __init__(self, generation: int, keys: int, *, passes_all: bool = False) -> None:
        size = 1 << 12
        while size < keys * _BITS_PER_KEY and not passes_all:
            size <<= 1
        self.generation = generation
        self.passes_all = passes_all  # a job too large for a filter: every name is looked up
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
        count = int(conn.execute("SELECT count(*) FROM users").fetchone()[0])
        if count > _MAX_USERS:
            return KeyFilter(gen, 0, passes_all=True)
        keys = KeyFilter(gen, 2 * count)
        add = keys.add
        cursor = conn.execute("SELECT user_id, screen_name FROM users")
        while rows := cursor.fetchmany(_CHECK_STOP):
            if stop is not None and stop.is_set():
                return None
            for user_id, name in rows:
                add(user_id)
                if name:  # an empty name matches nobody (the SQL rule's screen_name <> '')
                    add(name)
        return keys
    finally:
        conn.execute("COMMIT")


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

    __slots__ = ("_building", "_connect", "_filter", "_stale", "_stop", "_thread")

    def __init__(self, connect: Callable[[], sqlite3.Connection] | None = None) -> None:
        self._filter: KeyFilter | None = None
        self._stale = True
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
        if not self._stale or not any(ids == "[]" != names for names, ids in lists):
            return
        self._stale = False
        if self._connect is None:
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
    ) -> list[tuple[bytes | None, int]]:
        """For each (friend_names, friend_ids) JSON pair about to be saved (``names``:
        the same names as Python strings): its friend_keys and the generation they hold
        for, byte for byte as ``sqlite_graph.resolved_keys`` gives them, the generation
        read once. Call inside the save's transaction."""
        gen = graph.save_generation(conn, lists)
        if gen is None:
            return [(None, -1)] * len(lists)
        keys = self._filter
        if keys is None or keys.generation != gen:
            # Built for older users, or not yet: SQLite matches every name this time (a
            # filter being built is taken when it is done).
            self._stale = self._building is None
            keys = None
        if keys is None or keys.passes_all:
            return [graph.resolved_list(conn, names_json, ids, gen) for names_json, ids in lists]
        out: list[tuple[bytes | None, int]] = []
        wanted: dict[str, None] = {}
        pending: list[int] = []
        for i, (names_json, ids) in enumerate(lists):
            if (
                # Empty, with upstream ids, or a name holding NUL, which SQLite compares
                # only up to the NUL: as SQLite alone does.
                names_json == "[]"
                or ids != "[]"
                or "\\u0000" in names_json
                # Mostly the job's users: the filter would save nothing.
                or len(keys.candidates(names[i][:_SAMPLE])) * 2 > _SAMPLE
            ):
                out.append(graph.resolved_list(conn, names_json, ids, gen))
                continue
            found = keys.candidates(names[i])
            if len(found) > len(names[i]) * _FEW:
                # Many may match: SQLite matches the list, its other names sent as null
                # (json_group_array writes null for them, as for a name matching none).
                mask = set(found)
                masked = [n if n in mask else None for n in names[i]]
                out.append((graph.stored_keys(conn, msgspec.json.encode(masked).decode()), gen))
                continue
            if found:
                wanted.update(dict.fromkeys(found))
                pending.append(i)
            out.append((_NONE_RESOLVE, gen))
        if pending:
            order = list(wanted)
            resolved = {
                order[k]: v for k, v in conn.execute(_PROBE, (msgspec.json.encode(order).decode(),))
            }
            got = resolved.get
            for i in pending:
                pairs = [(p, key) for p, n in enumerate(names[i]) if (key := got(n)) is not None]
                out[i] = (lists_codec.encode_keys(pairs), gen)
        return out
