"""Waves: the same job collected again and again, each wave's lists kept readable.

Wave 1 is what a job collects first (a store written before waves holds wave 1 only).
``waves new`` opens the next wave: every user is pending again in it (pending in wave W
is "no result row of wave W": nothing is written per user to open a wave). Each result
carries its wave and a content hash of its list (``list_hash``); a list equal to the
user's previous one is not stored again, so a wave in which few lists changed adds
little to the store. What both stores share lives here (the hash, rows to records);
the records and the protocol of the seam are in ``base``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from friendscrape.stores import rows
from friendscrape.stores.base import WaveRow
from friendscrape.stores.rows import Row

_HASH_BYTES = 8


def list_hash(names: Sequence[str], ids: Sequence[str]) -> int:
    """A 64-bit content hash of one friend list (names and ids, in order), signed so
    both stores keep it as an integer; equal lists have equal hashes."""
    digest = hashlib.blake2b(digest_size=_HASH_BYTES)
    digest.update("\x1f".join(names).encode())
    digest.update(b"\x1e")
    digest.update("\x1f".join(ids).encode())
    return int.from_bytes(digest.digest(), "big", signed=True)


def lines_hash(names: bytes, ids: bytes, start: int = 0) -> int:
    """``list_hash`` of lists given as their UTF-8 values joined by line feeds, no value
    holding one (as ``lists_codec`` stores them), from byte ``start`` of each (a stored
    blob's first byte is its format's tag): the save has them joined already, and
    swapping the separators costs less than joining 1,000 values again. The tag is
    skipped by a view, not a copy of the rest (some 20 KB an x-api list)."""
    digest = hashlib.blake2b(digest_size=_HASH_BYTES)
    digest.update(memoryview(names.replace(b"\n", b"\x1f"))[start:])
    digest.update(b"\x1e")
    digest.update(memoryview(ids.replace(b"\n", b"\x1f"))[start:])
    return int.from_bytes(digest.digest(), "big", signed=True)


def wave_row(row: Row) -> WaveRow:
    """A WaveRow of a query's row: the result's columns (``rows.friend_list``) and
    ``list_hash``."""
    found = row["list_hash"]
    return WaveRow(
        user_id=row["user_id"],
        status=row["status"] or "ok",
        list_hash=int(found) if found is not None else None,
        end_at=rows.moment(row["end_at"]),
        row=row,
        read=rows.friend_list,
    )


def stored_hash(row: WaveRow) -> int:
    """A row's list hash: as stored, or computed (a row written before waves has none)."""
    if row.list_hash is not None:
        return row.list_hash
    result = row.result()
    return list_hash(result.friend_names, result.friend_ids)
