"""The simulator's Mastodon instance: ``GET /api/v1/accounts/{id}/following``.

Served from the same ``SyntheticGraph`` as the mobile site, as the instance
``INSTANCE``. Accounts are looked up by their numeric user id (a Mastodon account id);
each followed account is an Account entity whose ``id`` is ``SyntheticGraph.id_of``'s
and whose ``acct`` is its name, or ``name@DOMAIN`` for the quarter of them that live on
other instances. Pages hold ``limit`` accounts (at most 80, default 40); the next page is
the ``Link`` header's ``rel="next"`` URL, with an opaque numeric ``max_id``. As on
Mastodon, a list whose size is a multiple of the page size ends with one empty page.

``GET /api/v1/accounts/lookup?acct=USERNAME`` finds an account by its username (any
instance's handle: the simulator plays all three of ``HANDLE_INSTANCES`` through one
address) and answers its Account entity, or 404 "Record not found".

Answers, as the platform documents them (docs.joinmastodon.org): an unknown id, an
``invalid`` or ``not_found`` account: HTTP 404 "Record not found"; ``suspended``: HTTP
410; ``protected`` stands for an account that hides its network: HTTP 200 with an empty
array, which a collector records as ``ok`` with no accounts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from friendscrape.models import Status, User
from friendscrape.simulator.graph import AccountKind, SimAccount, SyntheticGraph
from friendscrape.simulator.twitter_mobile import SiteResponse

JSON_TYPE: Final = "application/json; charset=utf-8"
INSTANCE: Final = "social.example"
"""The instance the simulator plays; users are listed as ``ID@social.example``."""
MAX_LIMIT: Final = 80
DEFAULT_LIMIT: Final = 40
_REMOTE_DOMAINS: Final = ("mastodon.example", "fosstodon.example", "hachyderm.example")
HANDLE_INSTANCES: Final = (INSTANCE, "mastodon.example", "fosstodon.example")
"""The instances of the handles ``import_user(..., handles=True)`` writes."""
_T_HANDLE = 48
_T_SALT, _T_TAG, _T_REMOTE = 45, 46, 47
_TAG_BITS: Final = 12


def _json(status: int, doc: object, link: str | None = None) -> SiteResponse:
    headers = [("Content-Type", JSON_TYPE)]
    if link:
        headers.append(("Link", link))
    return SiteResponse(status, json.dumps(doc).encode(), tuple(headers))


def acct_of(graph: SyntheticGraph, name: str) -> str:
    """The ``acct`` this instance shows for a followed name: local, or on another domain."""
    h = graph.hash(_T_REMOTE, graph.listed_index(name))
    if h % 4:
        return name
    return f"{name}@{_REMOTE_DOMAINS[(h >> 8) % len(_REMOTE_DOMAINS)]}"


def handle_instance(graph: SyntheticGraph, account: SimAccount) -> str:
    """The instance of ``account``'s handle: one of three, the same on every call."""
    return HANDLE_INSTANCES[graph.hash(_T_HANDLE, account.index) % len(HANDLE_INSTANCES)]


def import_user(account: SimAccount, graph: SyntheticGraph | None = None) -> User:
    """How a researcher lists this account for ``--source mastodon``: ``ID@INSTANCE``, or
    with ``graph`` given its handle in one of three forms on one of three instances."""
    if graph is not None:
        instance = handle_instance(graph, account)
        name = account.screen_name
        form = graph.hash(_T_HANDLE + 1, account.index) % 3
        handle = (f"@{name}@{instance}", f"{name}@{instance}", f"https://{instance}/@{name}")
        return User(handle[form], handle[form], account.following_count)
    if account.kind is AccountKind.INVALID:
        # A username where the id belongs: a handle, which the lookup does not find.
        return User(account.user_id, f"{account.screen_name}@{INSTANCE}")
    return User(account.user_id, f"{account.user_id}@{INSTANCE}", account.following_count)


def expected(
    graph: SyntheticGraph, account: SimAccount, *, handles: bool = False
) -> tuple[Status, list[str], list[str]]:
    """The status, ``acct@instance`` names and ``id@instance`` ids a correct mastodon
    collector records for ``account`` (listed by its handle when ``handles``)."""
    status = _STATUS.get(account.kind, Status.FAILED)
    instance = handle_instance(graph, account) if handles else INSTANCE
    if status is not Status.OK or account.kind is AccountKind.PROTECTED:
        return status, [], []
    names = graph.listing(account, 0, account.following_count)
    accts = [acct_of(graph, name) for name in names]
    return (
        status,
        [a if "@" in a else f"{a}@{instance}" for a in accts],
        [f"{graph.id_of(graph.listed_index(name))}@{instance}" for name in names],
    )


_STATUS: Final = {
    AccountKind.OK: Status.OK,
    AccountKind.PROTECTED: Status.OK,
    AccountKind.SUSPENDED: Status.SUSPENDED,
    AccountKind.NOT_FOUND: Status.NOT_FOUND,
    # Listed by a username that is a well-formed handle (a dot inside is allowed): the
    # lookup does not find it.
    AccountKind.INVALID: Status.NOT_FOUND,
}


class Mastodon:
    """The following lists of every account of ``graph``, as one instance serves them."""

    def __init__(self, graph: SyntheticGraph) -> None:
        self.graph = graph
        self.not_found = _json(404, {"error": "Record not found"})
        self.gone = _json(410, {"error": "Account is suspended"})

    def max_id(self, account: SimAccount, offset: int) -> str:
        """The opaque ``max_id`` of ``account``'s list at ``offset``."""
        salt = self.graph.hash(_T_SALT, account.index) % (1 << 30)
        tag = self.graph.hash(_T_TAG, account.index ^ (offset << 32)) % (1 << _TAG_BITS)
        return str(100_000_000 + ((salt + offset) << _TAG_BITS | tag))

    def offset_of(self, account: SimAccount, max_id: str) -> int | None:
        """The offset a ``max_id`` stands for, or None when this instance never gave it."""
        if not (max_id.isascii() and max_id.isdigit()) or len(max_id) > 20:
            return None
        value = int(max_id) - 100_000_000
        offset = (value >> _TAG_BITS) - self.graph.hash(_T_SALT, account.index) % (1 << 30)
        if offset < 1 or self.max_id(account, offset) != max_id:
            return None
        return offset

    def lookup(self, acct: str) -> SiteResponse:
        """The answer to ``GET /api/v1/accounts/lookup?acct={acct}``."""
        account = self.graph.account(acct.removeprefix("@").partition("@")[0])
        gone = (AccountKind.NOT_FOUND, AccountKind.INVALID)
        if account is None or account.hostile or account.kind in gone:
            return self.not_found
        # A suspended account is still found: its following list answers 410.
        name = account.screen_name
        entity = {"id": account.user_id, "username": name, "acct": name, "locked": False}
        return _json(200, entity)

    def following(self, account_id: str, query: Mapping[str, str], origin: str) -> SiteResponse:
        """The answer to ``GET {origin}/api/v1/accounts/{account_id}/following?{query}``."""
        account = self.graph.account_by_id(account_id)
        if account is None or account.hostile:
            return self.not_found
        kind = account.kind
        if kind in (AccountKind.NOT_FOUND, AccountKind.INVALID):
            return self.not_found
        if kind is AccountKind.SUSPENDED:
            return self.gone
        if kind is AccountKind.PROTECTED:
            return _json(200, [])
        limit_text = query.get("limit", str(DEFAULT_LIMIT))
        limit = int(limit_text) if limit_text.isascii() and limit_text.isdigit() else DEFAULT_LIMIT
        # Mastodon clamps the limit rather than refusing it.
        size = min(max(limit, 1), MAX_LIMIT)
        start = 0
        max_id = query.get("max_id")
        if max_id is not None:
            found = self.offset_of(account, max_id)
            if found is None:
                return _json(200, [])
            start = found
        names = self.graph.listing(account, start, start + size)
        items = [self._entity(name) for name in names]
        link = None
        if len(names) == size:
            path = f"{origin}/api/v1/accounts/{account_id}/following"
            link = (
                f'<{path}?limit={size}&max_id={self.max_id(account, start + size)}>; rel="next", '
                f'<{path}?limit={size}&since_id={self.max_id(account, max(start, 1))}>; rel="prev"'
            )
        return _json(200, items, link)

    def _entity(self, name: str) -> dict[str, object]:
        n = self.graph.listed_index(name)
        acct = acct_of(self.graph, name)
        domain = acct.partition("@")[2] or INSTANCE
        return {
            "id": self.graph.id_of(n),
            "username": name,
            "acct": acct,
            "display_name": name.replace("_", " ").strip(),
            "url": f"https://{domain}/@{name}",
            "locked": False,
            "bot": False,
        }
