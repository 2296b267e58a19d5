"""The simulator's Bluesky AppView: ``GET /xrpc/app.bsky.graph.getFollows``.

Served from the same ``SyntheticGraph`` as the mobile site. Every name of the graph's
name space is also a Bluesky account: its handle is the name in lower case with ``_``
written ``-`` under ``bsky.social`` (``handle_of``), its DID a ``did:plc`` that encodes
its index (``did_of``); both map back in O(1). Pages hold ``limit`` follows (1-100,
default 50) and end with an opaque ``cursor`` while more follow.

Answers, as the platform documents them (docs.bsky.app): an unknown actor, a
``not_found`` account: HTTP 400 ``InvalidRequest`` "Profile not found"; ``suspended``:
``AccountTakedown``; ``protected`` (Bluesky has no protected accounts):
``AccountDeactivated``. An ``invalid`` account is listed with an impossible handle, so a
collector rejects it without a request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from friendscrape.models import Status, User
from friendscrape.simulator.graph import AccountKind, SimAccount, SyntheticGraph
from friendscrape.simulator.twitter_mobile import SiteResponse

JSON_TYPE: Final = "application/json; charset=utf-8"
HANDLE_DOMAIN: Final = ".bsky.social"
MAX_LIMIT: Final = 100
DEFAULT_LIMIT: Final = 50

_T_DID, _T_SALT, _T_TAG = 42, 43, 44
_TAG_BITS: Final = 16
_B32: Final = "abcdefghijklmnopqrstuvwxyz234567"
_DID_PREFIX: Final = "did:plc:"
_INDEX_CHARS: Final = 6  # 30 bits: the whole name space


def _json(status: int, doc: object) -> SiteResponse:
    return SiteResponse(status, json.dumps(doc).encode(), (("Content-Type", JSON_TYPE),))


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_B32[digit])
    return "".join(reversed(chars))


def handle_of(name: str) -> str:
    """The Bluesky handle of a screen name of the graph (a valid domain name)."""
    return name.lower().replace("_", "-").lstrip("-") + HANDLE_DOMAIN


def did_of(graph: SyntheticGraph, n: int) -> str:
    """The ``did:plc`` of name-space index ``n``."""
    mask = graph.hash(_T_DID, 0) % (1 << 30)
    tail = graph.hash(_T_DID, n + 1)
    return _DID_PREFIX + _b32(n ^ mask, _INDEX_CHARS) + _b32(tail, 24 - _INDEX_CHARS)


def index_of_actor(graph: SyntheticGraph, actor: str) -> int | None:
    """The name-space index of a handle or DID this module gives, or None."""
    if actor.startswith(_DID_PREFIX):
        head = actor[len(_DID_PREFIX) : len(_DID_PREFIX) + _INDEX_CHARS]
        if len(actor) != len(_DID_PREFIX) + 24 or any(c not in _B32 for c in head):
            return None
        value = 0
        for char in head:
            value = value * 32 + _B32.index(char)
        index = value ^ graph.hash(_T_DID, 0) % (1 << 30)
        return index if did_of(graph, index) == actor else None
    handle = actor.lower()
    if not handle.endswith(HANDLE_DOMAIN):
        return None
    n = graph.index_of(handle.removesuffix(HANDLE_DOMAIN))
    if n is None or handle_of(graph.name_of(n)) != handle:
        return None
    return n


def import_user(graph: SyntheticGraph, account: SimAccount) -> User:
    """How a researcher lists this account for ``--source bluesky``: by handle, with the
    following count as the twitter-mobile file gives it (``graph.following_hint``: empty
    for about 15 % of users), so ``partitions plan --balance pages`` weighs a Bluesky job
    by its lists as it would a real one whose users file carries their counts."""
    if account.kind is AccountKind.INVALID:
        # An empty label: no handle can look like it.
        return User(account.user_id, f"{account.screen_name.lower()}..bsky.social")
    return User(account.user_id, handle_of(account.screen_name), graph.following_hint(account))


def expected(graph: SyntheticGraph, account: SimAccount) -> tuple[Status, list[str], list[str]]:
    """The status, handles and DIDs a correct bluesky collector records for ``account``."""
    status = _STATUS.get(account.kind, Status.FAILED)
    if status is not Status.OK:
        return status, [], []
    names = graph.listing(account, 0, account.following_count)
    dids = [did_of(graph, graph.listed_index(name)) for name in names]
    return status, [handle_of(name) for name in names], dids


_STATUS: Final = {
    AccountKind.OK: Status.OK,
    AccountKind.PROTECTED: Status.DEACTIVATED,
    AccountKind.SUSPENDED: Status.SUSPENDED,
    AccountKind.NOT_FOUND: Status.NOT_FOUND,
    AccountKind.INVALID: Status.INVALID,
}


def _error(name: str, message: str) -> SiteResponse:
    return _json(400, {"error": name, "message": message})


class Bluesky:
    """The getFollows method for every account of ``graph``."""

    def __init__(self, graph: SyntheticGraph) -> None:
        self.graph = graph

    def cursor(self, account: SimAccount, offset: int) -> str:
        """The opaque cursor of ``account``'s follows at ``offset``."""
        salt = self.graph.hash(_T_SALT, account.index) % (1 << 34)
        tag = self.graph.hash(_T_TAG, account.index ^ (offset << 32)) % (1 << _TAG_BITS)
        return _b32((salt + offset) << _TAG_BITS | tag, 13)

    def offset_of(self, account: SimAccount, cursor: str) -> int | None:
        """The offset a cursor stands for, or None when the AppView never gave it."""
        if len(cursor) != 13 or any(c not in _B32 for c in cursor):
            return None
        value = 0
        for char in cursor:
            value = value * 32 + _B32.index(char)
        offset = (value >> _TAG_BITS) - self.graph.hash(_T_SALT, account.index) % (1 << 34)
        if offset < 1 or self.cursor(account, offset) != cursor:
            return None
        return offset

    def get_follows(self, query: Mapping[str, str]) -> SiteResponse:
        """The answer to ``GET /xrpc/app.bsky.graph.getFollows?{query}``."""
        actor = query.get("actor", "")
        if not actor:
            return _error("InvalidRequest", 'Error: Params must have the property "actor"')
        limit_text = query.get("limit", str(DEFAULT_LIMIT))
        if not (limit_text.isascii() and limit_text.isdigit()) or not (
            1 <= int(limit_text) <= MAX_LIMIT
        ):
            return _error("InvalidRequest", f"Error: limit must be between 1 and {MAX_LIMIT}")
        n = index_of_actor(self.graph, actor)
        account = self.graph.account(self.graph.name_of(n)) if n is not None else None
        if account is None or account.hostile:
            return _error("InvalidRequest", "Profile not found")
        kind = account.kind
        if kind in (AccountKind.NOT_FOUND, AccountKind.INVALID):
            return _error("InvalidRequest", "Profile not found")
        if kind is AccountKind.SUSPENDED:
            return _error("AccountTakedown", "Account has been suspended")
        if kind is AccountKind.PROTECTED:
            return _error("AccountDeactivated", "Account is deactivated")
        start = 0
        cursor = query.get("cursor")
        if cursor is not None:
            found = self.offset_of(account, cursor)
            if found is None or found >= account.following_count:
                return _error("InvalidRequest", "Malformed cursor")
            start = found
        size = int(limit_text)
        names = self.graph.listing(account, start, start + size)
        assert n is not None  # noqa: S101 - an account was found for it
        doc: dict[str, object] = {
            "subject": self._profile(n),
            "follows": [self._profile(self.graph.listed_index(name)) for name in names],
        }
        if start + size < account.following_count:
            doc["cursor"] = self.cursor(account, start + size)
        return _json(200, doc)

    def _profile(self, n: int) -> dict[str, str]:
        name = self.graph.name_of(n)
        return {
            "did": did_of(self.graph, n),
            "handle": handle_of(name),
            "displayName": name.replace("_", " ").strip(),
        }
