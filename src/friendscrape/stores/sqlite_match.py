"""The SQLite export's own match of the friend lists left unmatched: those of stores
written by older versions (lists with upstream ids off the fast path, and lists saved
before the latest import of users, were matched only by the export then). Lists are now
matched at save and again by the import that changes the job's users
(``sqlite_keys``): an export reaches this only for what those left.

Matched in SQL, one index look-up per friend (by upstream id, then by name) capped such
exports at some 45,000 users a minute. Here the job's keys are read once, in one pass
over its users, into a dict from each key folded as SQLite's NOCASE folds it (ASCII
letters only) to the smallest user id holding it, and each list is matched in Python
(two dict look-ups per friend). The same rule as the SQL (``sqlite_graph.RESOLVE_ONE``):
a user's id or non-empty name equal to the key ignoring case, the smallest id in text
order when several are. A user id that is already folded is the dict's key and its
value, one string: a job of upstream ids or lower-case handles costs some 100 bytes a
user."""

from __future__ import annotations

import sqlite3
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(key: str) -> str:
    """``key`` as SQLite's NOCASE compares it: ASCII letters in lower case, any other
    character as it is."""
    return key.lower() if key.isascii() else key.translate(_FOLD)


def _up_to_nul(key: str) -> str:
    """A key holding NUL as SQLite's JSON reads it from a list (text up to the NUL)."""
    return fold(key.split("\0", 1)[0])


def _with_nul(key: str) -> str:
    """A key holding NUL as SQLite's NOCASE compares it where JSON keeps the NUL: text up
    to the NUL, then length in bytes (a key without NUL never equals one with)."""
    at = key.find("\0")
    if at < 0:
        return fold(key)
    return f"{fold(key[:at])}\0{len(key.encode())}"


class ListMatch(Protocol):
    """How an export matches a list left unmatched at save."""

    def match(self, names: list[str], ids: list[str]) -> tuple[list[str], list[bool]]:
        """The list's targets and known flags (see ``match``)."""

    def close(self) -> None:
        """Let go of what matching held (the export is done)."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The job's keys (folded) -> the smallest user id holding each, and how to fold a
    friend's name or id that holds a NUL (any other: ``fold``)."""

    ids: dict[str, str]
    nul: Callable[[str], str]

    def folded(self, values: list[str]) -> Iterable[str]:
        """``values`` folded as the job's keys are: the whole list at once, joined by NUL
        (a call per friend was most of the match's CPU), unless a value holds one."""
        if not values:
            return []
        joined = "\0".join(values)
        if joined.count("\0") != len(values) - 1:
            return map(self.nul, values)
        return (joined.lower() if joined.isascii() else joined.translate(_FOLD)).split("\0")


class KeyMap:
    """The job's keys (``fold``ed) -> the smallest user id holding each, read when first
    asked for, on a read-only connection of its own, as the export runs."""

    __slots__ = ("_keys", "_lock", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._keys: Keys | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The store's file."""
        return self._path

    @classmethod
    def of(cls, conn: sqlite3.Connection) -> KeyMap:
        """The keys of the store ``conn`` has open (its main database file)."""
        path: str = conn.execute("PRAGMA database_list").fetchone()[2]
        return cls(path)

    def match(self, names: list[str], ids: list[str]) -> tuple[list[str], list[bool]]:
        """One list's targets and known flags (``match``)."""
        return match(names, ids, self)

    def close(self) -> None:
        """Nothing held open (the keys are read on a connection closed at once)."""

    def get(self) -> Keys:
        """The job's keys."""
        with self._lock:
            if self._keys is None:
                uri = f"{Path(self._path).resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True)
                try:
                    self._keys = _read(conn)
                finally:
                    conn.close()
            return self._keys


def _read(conn: sqlite3.Connection) -> Keys:
    """Every key of the job's users, in user id order (so the first user to hold a key is
    the smallest id, as min() in SQL). SQLite's JSON may read a list's text only up to a
    NUL (3.40 does): then a job's key holding one equals no friend's and is left out."""
    probe = conn.execute("SELECT value FROM json_each(?)", ('["a\\u0000b"]',)).fetchone()[0]
    nul = _up_to_nul if probe == "a" else _with_nul
    keys: dict[str, str] = {}
    add = keys.setdefault
    cursor = conn.execute("SELECT user_id, screen_name FROM users ORDER BY user_id")
    while rows := cursor.fetchmany(1 << 14):
        for user_id, name in rows:
            if "\0" in user_id or (name and "\0" in name):
                _add_with_nul(keys, nul, user_id, name)
                continue
            folded = fold(user_id)
            add(user_id if folded == user_id else folded, user_id)
            if name:  # an empty name matches nobody (the SQL rule's screen_name <> '')
                add(fold(name), user_id)
    return Keys(keys, nul)


def _add_with_nul(
    keys: dict[str, str], nul: Callable[[str], str], user_id: str, name: str | None
) -> None:
    """The keys of a user whose id or name holds a NUL (see ``_read``)."""
    for key in (user_id, name) if name else (user_id,):
        if "\0" not in key:
            keys.setdefault(fold(key), user_id)
        elif nul is _with_nul:
            keys.setdefault(_with_nul(key), user_id)


def match(names: list[str], ids: list[str], key_map: KeyMap) -> tuple[list[str], list[bool]]:
    """One list's targets and known flags: the job's user each friend is (by upstream id
    when ``ids`` pair with ``names``, then by name), else its upstream id, else "" (as the
    SQL match gave them)."""
    keys = key_map.get()
    get = keys.ids.get
    by_name = list(map(get, keys.folded(names)))
    if not ids:
        return [r or "" for r in by_name], [r is not None for r in by_name]
    by_id = list(map(get, keys.folded(ids)))
    resolved = [a or b for a, b in zip(by_id, by_name, strict=True)]
    targets = [r or i or "" for r, i in zip(resolved, ids, strict=True)]
    return targets, [r is not None for r in resolved]
