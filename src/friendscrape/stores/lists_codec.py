"""Friend lists as bytes on disk, and back: the compact form new SQLite rows keep their
names, ids and resolved keys in, read by both stores' row mappers beside the JSON text
of rows written by older versions.

A stored list is either JSON text (every row of an older version, and an empty list
still: ``[]``) or a blob whose first byte says how the rest is written:

- ``NAMES_RAW`` / ``NAMES_DEFLATED``: the names joined by a line feed, UTF-8, as they
  are or deflated (raw DEFLATE, no header). Used when no name holds a line feed.
- ``JSON_RAW`` / ``JSON_DEFLATED``: the JSON array, for a list with a name that does.
- ``KEYS_RAW`` / ``KEYS_DEFLATED``: resolved keys, sparse: a JSON array of ``[position,
  "user id"]`` pairs for the friends that are users of the job (no body: none is). The
  dense JSON of older rows holds a ``null`` for every other friend, some 5 bytes each,
  and most friends are not users of the job.

Deflate is kept only when it is smaller. A list of 480 names of 11 characters (the
simulator's mean) is 6.7 KB of JSON, 5.2 KB joined and 3.3 KB deflated; deflating costs
some 0.25 ms of CPU per 1,000 names, inflating a third of that. The caller says whether
a list is worth it (see the SQLite save). The type of the value (text or blob) is the
row's format marker: rows of both formats live side by side in one table.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import msgspec

from friendscrape.errors import StoreError

NAMES_RAW = 0x01
NAMES_DEFLATED = 0x02
JSON_RAW = 0x03
JSON_DEFLATED = 0x04
KEYS_RAW = 0x11
KEYS_DEFLATED = 0x12

EMPTY = "[]"
"""An empty list, as both formats store it (JSON text: nothing to gain from a blob)."""

_LEVEL = 6
"""zlib's default: on lists this short it costs about what level 1 does, and is smaller."""

_WBITS = -15
"""Raw DEFLATE: no zlib header and checksum (6 bytes a list; the store checks pages)."""

_MIN_DEFLATE = 64
"""Shorter bodies are kept as they are: deflate's own bytes would outweigh its gain."""

_KEY_PAIRS = msgspec.json.Decoder(list[tuple[int, str]])
_STRINGS = msgspec.json.Decoder(list[str])


def _pack(raw_tag: int, deflated_tag: int, body: bytes, *, deflate: bool = True) -> bytes:
    """``body`` behind its tag, deflated when asked and when that makes it smaller."""
    if deflate and len(body) >= _MIN_DEFLATE:
        packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS)
        deflated = packer.compress(body) + packer.flush()
        if len(deflated) < len(body):
            return bytes((deflated_tag,)) + deflated
    return bytes((raw_tag,)) + body


def encode(
    values: Sequence[str],
    *,
    deflate: bool = True,
    joined: str | None = None,
    line_free: bool = False,
) -> str | bytes:
    """A list of names or ids as stored: ``[]`` when empty, else a blob (see the module's
    docstring), deflated only if ``deflate``. ``joined``: ``values`` joined by line
    feeds, when the caller has that text (not joined again); ``line_free``: the caller
    knows that no value holds a line feed (a parser checked the text), and the text's
    line feeds are not counted again (some 4 microseconds a list of 1,000). Raises as
    JSON encoding does for text that is not valid Unicode (a lone surrogate)."""
    if not values:
        return EMPTY
    if joined is None:
        joined = "\n".join(values)
        line_free = False
    # A value holds a line feed when the joined text has more than the joins': one count
    # in C, where a look into each value cost some 40 microseconds a list of 1,000.
    if not line_free and joined.count("\n") != len(values) - 1:
        return _pack(JSON_RAW, JSON_DEFLATED, msgspec.json.encode(values), deflate=deflate)
    return _pack(NAMES_RAW, NAMES_DEFLATED, joined.encode(), deflate=deflate)


def _body(blob: bytes) -> bytes:
    if blob[0] in (NAMES_DEFLATED, JSON_DEFLATED, KEYS_DEFLATED):
        return zlib.decompress(blob[1:], _WBITS)
    return blob[1:]


class DamagedListError(StoreError):
    """A stored list or its keys cannot be read: the store's file was changed or damaged
    outside friendscrape."""


def _damaged(what: str, exc: Exception) -> DamagedListError:
    return DamagedListError(
        f"{what} in the store cannot be read ({exc}): the store was changed outside "
        "friendscrape or is damaged; restore it from a copy, or delete that user's row "
        "(its user is then collected again)"
    )


def decode(stored: str | bytes | None) -> list[str]:
    """A stored list of names or ids (a blob, or the JSON text of older rows) as a list;
    None (a column older rows lack) is empty. A list that cannot be read raises
    DamagedListError, never a decoder's own error."""
    try:
        return _decode(stored)
    except (ValueError, zlib.error, msgspec.DecodeError) as exc:  # UnicodeError is a ValueError
        raise _damaged("a friend list", exc) from None


def _decode(stored: str | bytes | None) -> list[str]:
    if stored is None:
        return []
    if isinstance(stored, str):
        return _STRINGS.decode(stored)
    if not stored:
        msg = "a stored friend list is an empty blob"
        raise ValueError(msg)
    tag = stored[0]
    if tag in (NAMES_RAW, NAMES_DEFLATED):
        return _body(stored).decode().split("\n")
    if tag in (JSON_RAW, JSON_DEFLATED):
        return _STRINGS.decode(_body(stored))
    msg = f"a stored friend list has an unknown format (first byte {tag:#04x})"
    raise ValueError(msg)


def folded_values(stored: str | bytes | None) -> list[bytes] | None:
    """A stored list's values as UTF-8 with ASCII letters in lower case (as SQLite's
    NOCASE folds them), from a joined blob without decoding its text; None when a value
    holds a NUL (SQLite may compare it only up to the NUL: the caller must not judge).
    Raises DamagedListError as ``decode`` does."""
    if stored is None or stored == EMPTY:
        return []
    try:
        if isinstance(stored, bytes) and stored and stored[0] in (NAMES_RAW, NAMES_DEFLATED):
            body = _body(stored)
            return None if b"\0" in body else body.lower().split(b"\n")
    except zlib.error as exc:
        raise _damaged("a friend list", exc) from None
    values = decode(stored)
    if any("\0" in v for v in values):
        return None
    return [v.encode(errors="surrogatepass").lower() for v in values]


def as_json(stored: str | bytes | None) -> str:
    """A stored list as JSON text: what older rows hold (returned as it is), or a blob's
    list written as JSON (for SQL that walks lists with json_each)."""
    if isinstance(stored, str):
        return stored
    return msgspec.json.encode(decode(stored)).decode()


def encode_keys(pairs: Sequence[tuple[int, str]], *, deflate: bool = True) -> bytes:
    """Resolved keys as stored: the ``(position, user id)`` of each friend that is a
    user of the job, in list order (none: a blob of its tag alone), deflated only if
    ``deflate``."""
    body = msgspec.json.encode(pairs) if pairs else b""
    return _pack(KEYS_RAW, KEYS_DEFLATED, body, deflate=deflate)


def sparse(dense_json: str) -> list[tuple[int, str]]:
    """The pairs of keys given densely as JSON text (``null`` where a friend resolves to
    no user), as SQLite's json_group_array writes them."""
    dense: list[str | None] = msgspec.json.decode(dense_json)
    return [(i, key) for i, key in enumerate(dense) if key is not None]


def decode_keys(stored: str | bytes, count: int) -> list[str | None]:
    """Stored keys as a dense list of ``count`` (one per friend, None where the friend is
    no user of the job): dense JSON text of older rows, or a sparse blob."""
    try:
        return _decode_keys(stored, count)
    except (ValueError, IndexError, TypeError, zlib.error, msgspec.DecodeError) as exc:
        raise _damaged("a friend list's keys", exc) from None


def key_pairs(stored: str | bytes) -> list[tuple[int, str]]:
    """Stored keys as the ``(position, user id)`` pairs of the friends that are users of
    the job, in list order (what an export fills its targets from, friend by friend only
    where one is a user)."""
    try:
        return _key_pairs(stored)
    except (ValueError, IndexError, TypeError, zlib.error, msgspec.DecodeError) as exc:
        raise _damaged("a friend list's keys", exc) from None


def _key_pairs(stored: str | bytes) -> list[tuple[int, str]]:
    if isinstance(stored, str):
        return sparse(stored)
    tag = stored[0] if stored else 0
    if tag not in (KEYS_RAW, KEYS_DEFLATED):
        msg = f"stored friend keys have an unknown format (first byte {tag:#04x})"
        raise ValueError(msg)
    body = _body(stored)
    return _KEY_PAIRS.decode(body) if body else []


def _decode_keys(stored: str | bytes, count: int) -> list[str | None]:
    if isinstance(stored, str):
        dense: list[str | None] = msgspec.json.decode(stored)
        return dense
    tag = stored[0] if stored else 0
    if tag not in (KEYS_RAW, KEYS_DEFLATED):
        msg = f"stored friend keys have an unknown format (first byte {tag:#04x})"
        raise ValueError(msg)
    keys: list[str | None] = [None] * count
    body = _body(stored)
    if body:
        for position, key in _KEY_PAIRS.decode(body):
            keys[position] = key
    return keys
