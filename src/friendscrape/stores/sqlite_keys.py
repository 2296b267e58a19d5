"""Save-time matching of names-only friend lists (twitter-mobile) to the job's users in
the SQLite store, with a filter of the job's keys kept per connection.

Most friends of a job's users are not users of the job, yet SQLite's match costs two
index look-ups per name (some 2-4 microseconds; 60-80 per page of 20 names). A Bloom
filter of the job's ids and names, folded to lower case, tells in a fraction of that
that a name matches nobody; only the other names are looked up, with the same SQL rule
as before, so the stored lists are byte for byte what SQLite alone builds. The filter is
stamped with the generation of the job's users it was built from and used only while
that generation is current (an import in another process starts a new one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

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


def _build(conn: sqlite3.Connection) -> KeyFilter | None:
    """A filter of the job's keys at the current generation, read in one snapshot (one
    that passes every name when the job is too large); None while lists are not resolved
    at save."""
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
        for user_id, name in conn.execute("SELECT user_id, screen_name FROM users"):
            add(user_id)
            if name:  # an empty name matches nobody (the SQL rule's screen_name <> '')
                add(name)
        return keys
    finally:
        conn.execute("COMMIT")


class SaveMatcher:
    """Resolves the lists of each save of one connection (calls come one at a time)."""

    __slots__ = ("_filter", "_stale")

    def __init__(self) -> None:
        self._filter: KeyFilter | None = None
        self._stale = True

    def prepare(self, conn: sqlite3.Connection, lists: Sequence[tuple[str, str]]) -> None:
        """Before a save's transaction, (re)build the filter when the last save found it
        missing or outdated: reading the job's users never holds the write lock."""
        if self._stale and any(ids == "[]" != names for names, ids in lists):
            self._filter = _build(conn)
            self._stale = False

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
            # Built for older users, or not yet: SQLite matches every name this time.
            self._stale = True
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
