"""The simulator's X API v2 following lookup: ``GET /2/users/{id}/following``.

Served from the same ``SyntheticGraph`` as the mobile site. Users are looked up by
their numeric user id; each followed account is ``{id, name, username}`` with the id
``SyntheticGraph.id_of`` gives it. Pages hold ``max_results`` accounts (1-1000, default
100) and end with ``meta.next_token``, an opaque token of the next offset.

Answers, as the platform documents them (docs.x.com): an unknown id, an ``invalid`` or
``not_found`` account: HTTP 200 with a ``resource-not-found`` problem; ``suspended``:
the same type, title "Forbidden", "User has been suspended"; ``protected``: a
``not-authorized-for-resource`` problem; a bad ``max_results`` or token: HTTP 400.

``GET /2/users/by?usernames=a,b`` (1-100 usernames) answers ``data`` with the accounts
found and one ``errors`` item per username it cannot give (not found, or suspended).

Tokens: requests are served with or without ``Authorization`` (so a run without
credentials works against the simulator); a header that is not ``Bearer <token>``, or
a token starting with ``revoked``, gets the API's HTTP 401.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from friendscrape.models import Status, User
from friendscrape.simulator.graph import AccountKind, SimAccount, SyntheticGraph
from friendscrape.simulator.twitter_mobile import SiteResponse

JSON_TYPE: Final = "application/json; charset=utf-8"
MAX_RESULTS: Final = 1000
DEFAULT_RESULTS: Final = 100
REVOKED_PREFIX: Final = "revoked"
"""Bearer tokens starting with this are refused with HTTP 401."""

_PROBLEMS: Final = "https://api.twitter.com/2/problems"
_T_SALT, _T_TAG = 40, 41
_TAG_BITS: Final = 16
_B32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _json(status: int, doc: object) -> SiteResponse:
    return SiteResponse(status, json.dumps(doc).encode(), (("Content-Type", JSON_TYPE),))


def import_user(account: SimAccount, *, handles: bool = False) -> User:
    """How a researcher lists this account for ``--source x-api``: by its numeric id,
    or with ``handles`` by its username alone."""
    if handles:
        return User(account.screen_name, account.screen_name, account.following_count)
    return User(account.user_id, account.screen_name, account.following_count)


def expected(
    graph: SyntheticGraph, account: SimAccount, *, handles: bool = False
) -> tuple[Status, list[str], list[str]]:
    """The status, usernames and ids a correct x-api collector records for ``account``
    (listed by its username when ``handles``: an impossible one is ``invalid``)."""
    status = _STATUS.get(account.kind, Status.FAILED)
    if handles and account.kind is AccountKind.INVALID:
        return Status.INVALID, [], []
    if status is not Status.OK:
        return status, [], []
    names = graph.listing(account, 0, account.following_count)
    return status, names, [graph.id_of(graph.listed_index(name)) for name in names]


_STATUS: Final = {
    AccountKind.OK: Status.OK,
    AccountKind.PROTECTED: Status.PROTECTED,
    AccountKind.SUSPENDED: Status.SUSPENDED,
    AccountKind.NOT_FOUND: Status.NOT_FOUND,
    # The screen name is impossible, but the numeric id is well-formed: the API
    # answers "not found" for it.
    AccountKind.INVALID: Status.NOT_FOUND,
}


class XApi:
    """The following lookup of every account of ``graph``."""

    def __init__(self, graph: SyntheticGraph) -> None:
        self.graph = graph
        self.unauthorized = _json(
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )

    # -- tokens ----------------------------------------------------------------------

    def token(self, account: SimAccount, offset: int) -> str:
        """The opaque ``next_token`` of ``account``'s list at ``offset``."""
        salt = self.graph.hash(_T_SALT, account.index) % (1 << 34)
        tag = self.graph.hash(_T_TAG, account.index ^ (offset << 32)) % (1 << _TAG_BITS)
        value = (salt + offset) << _TAG_BITS | tag
        chars = []
        while value:
            value, digit = divmod(value, 32)
            chars.append(_B32[digit])
        return "".join(reversed(chars)).rjust(13, "A")

    def offset_of(self, account: SimAccount, token: str) -> int | None:
        """The offset a token stands for, or None when the API never gave it."""
        if not 1 <= len(token) <= 20 or any(c not in _B32 for c in token):
            return None
        value = 0
        for char in token:
            value = value * 32 + _B32.index(char)
        salt = self.graph.hash(_T_SALT, account.index) % (1 << 34)
        offset = (value >> _TAG_BITS) - salt
        if offset < 1 or self.token(account, offset) != token:
            return None
        return offset

    # -- the endpoints ---------------------------------------------------------------

    def users_by(self, query: Mapping[str, str], authorization: str | None) -> SiteResponse:
        """The answer to ``GET /2/users/by?usernames=...``."""
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme != "Bearer" or not token.strip() or token.startswith(REVOKED_PREFIX):
                return self.unauthorized
        names = query.get("usernames", "").split(",")
        if not 1 <= len(names) <= DEFAULT_RESULTS or not all(names):
            return _invalid("usernames", "The `usernames` query parameter needs 1 to 100 names")
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for name in names:
            account = self.graph.account(name)
            gone = (AccountKind.NOT_FOUND, AccountKind.INVALID)
            if account is None or account.hostile or account.kind in gone:
                what = "not_found"
            elif account.kind is AccountKind.SUSPENDED:
                what = "suspended"
            else:
                data.append(
                    {"id": account.user_id, "name": _display(name), "username": account.screen_name}
                )
                continue
            error = self._problem(name, what)
            errors.append({**_first_error(error), "parameter": "usernames"})
        doc: dict[str, Any] = {}
        if data:
            doc["data"] = data
        if errors:
            doc["errors"] = errors
        return _json(200, doc)

    def following(
        self, user_id: str, query: Mapping[str, str], authorization: str | None
    ) -> SiteResponse:
        """The answer to ``GET /2/users/{user_id}/following?{query}``."""
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme != "Bearer" or not token.strip() or token.startswith(REVOKED_PREFIX):
                return self.unauthorized
        size = _max_results(query.get("max_results"))
        if size is None:
            return _invalid(
                "max_results",
                "The `max_results` query parameter value "
                f"[{query.get('max_results', '')[:20]}] is not between 1 and 1000",
            )
        account = self.graph.account_by_id(user_id)
        if account is None or account.hostile:
            return self._problem(user_id, "not_found")
        kind = account.kind
        if kind in (AccountKind.NOT_FOUND, AccountKind.INVALID):
            return self._problem(user_id, "not_found")
        if kind is AccountKind.SUSPENDED:
            return self._problem(user_id, "suspended")
        if kind is AccountKind.PROTECTED:
            return self._problem(user_id, "protected")
        start = 0
        page_token = query.get("pagination_token")
        if page_token is not None:
            found = self.offset_of(account, page_token)
            if found is None or found >= account.following_count:
                return _invalid(
                    "pagination_token",
                    f"The `pagination_token` query parameter value [{page_token[:40]}] "
                    "is not valid",
                )
            start = found
        return self._page(account, start, size)

    def _page(self, account: SimAccount, start: int, size: int) -> SiteResponse:
        names = self.graph.listing(account, start, start + size)
        if not names:
            return _json(200, {"meta": {"result_count": 0}})
        data = [
            {
                "id": self.graph.id_of(self.graph.listed_index(name)),
                "name": _display(name),
                "username": name,
            }
            for name in names
        ]
        meta: dict[str, Any] = {"result_count": len(data)}
        if start + size < account.following_count:
            meta["next_token"] = self.token(account, start + size)
        if start > 0:
            meta["previous_token"] = self.token(account, max(start - size, 1))
        return _json(200, {"data": data, "meta": meta})

    @staticmethod
    def _problem(user_id: str, what: str) -> SiteResponse:
        base = {
            "value": user_id,
            "resource_type": "user",
            "parameter": "id",
            "resource_id": user_id,
        }
        if what == "suspended":
            error = {
                **base,
                "title": "Forbidden",
                "type": f"{_PROBLEMS}/resource-not-found",
                "detail": f"User has been suspended: [{user_id}].",
            }
        elif what == "protected":
            error = {
                **base,
                "title": "Authorization Error",
                "section": "data",
                "type": f"{_PROBLEMS}/not-authorized-for-resource",
                "detail": f"Sorry, you are not authorized to see the user with id: [{user_id}].",
            }
        else:
            error = {
                **base,
                "title": "Not Found Error",
                "type": f"{_PROBLEMS}/resource-not-found",
                "detail": f"Could not find user with id: [{user_id}].",
            }
        return _json(200, {"errors": [error]})


def _max_results(text: str | None) -> int | None:
    if text is None:
        return DEFAULT_RESULTS
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_RESULTS:
        return None
    return int(text)


def _invalid(parameter: str, message: str) -> SiteResponse:
    return _json(
        400,
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{_PROBLEMS}/invalid-request",
        },
    )


def _display(name: str) -> str:
    """A display name for a username (the API's ``name`` field)."""
    return name.rstrip("0123456789").replace("_", " ").strip().title() or name


def _first_error(response: SiteResponse) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response.body)["errors"][0]
    return error
