"""The x-api source: X API v2 following lookups, by numeric user id or username.

``GET {base}/2/users/{id}/following?max_results=1000[&pagination_token=T]``
(docs.x.com, "GET /2/users/:id/following"). The user is ``User.user_id``: a numeric X
user id, or a username (``alice`` or ``@alice``), which is looked up first, 100 a
request, with ``GET /2/users/by?usernames=...`` (docs.x.com, "GET /2/users/by"); the id
found is kept in the store (``User.resolved_id``), and an unknown or suspended username
gets its status from that answer. ``screen_name`` is only carried along. Bearer tokens are not this
module's concern: the HTTP layer's credential pool attaches ``Authorization`` for the
API host and reads the rate-limit headers, so no token ever passes through a source.

An HTTP 401 or 403 answer is about the token or the app (revoked, wrong, or the app
not enrolled in a project), not about the user: it raises ``CredentialsRejectedError``,
which ends the run with one message rather than marking every user failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from yarl import URL

from friendscrape.errors import CredentialsRejectedError
from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, Resolution, User
from friendscrape.parse.x_api import (
    USERNAME_RE,
    is_valid_user_id,
    parse_following_page,
    parse_users_by,
)
from friendscrape.sources import checked_base_url, quoted_cursor

DEFAULT_BASE_URL = "https://api.x.com"
API_HOSTS: Final = ("api.x.com", "api.twitter.com")
"""The X API's hosts: the bearer-token pool goes to these and to the base URL's host."""
PAGE_SIZE = 1000
"""``max_results``: the largest page the endpoint gives (1-1000)."""


class XApiSource:
    """Following lists from X API v2, ``max_results=1000`` a page."""

    name: str = "x-api"
    paging_params: frozenset[str] = frozenset({"pagination_token", "max_results"})
    case_blind_paths: bool = False
    lookup_batch: int = 100
    """``usernames``: the most ``GET /2/users/by`` takes a request."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = checked_base_url(base_url, DEFAULT_BASE_URL)
        # Keyed as the HTTP client keys its limiter slots: by yarl's host, port dropped.
        base_host = URL(self.base_url).host or ""
        self._credential_hosts = tuple(dict.fromkeys(h for h in (*API_HOSTS, base_host) if h))

    @property
    def credential_hosts(self) -> tuple[str, ...]:
        """The X API hosts and the base URL's host (the simulator, a proxy)."""
        return self._credential_hosts

    def check_user(self, user: User) -> str | None:
        """Why ``user.user_id`` is neither an X user id nor a username (no request is
        sent), or None."""
        if is_valid_user_id(user.user_id) or _username(user) is not None:
            return None
        return f"user id {user.user_id[:40]!r} is neither a numeric X user id nor a username"

    def needs_lookup(self, user: User) -> bool:
        """A username whose id the store does not hold yet."""
        return user.resolved_id is None and _username(user) is not None

    def lookup_request(self, users: Sequence[User]) -> PageRequest:
        """``GET {base}/2/users/by?usernames=a,b,...`` for up to 100 users."""
        names = [_username(user) for user in users]
        if not names or len(names) > self.lookup_batch or None in names:
            msg = f"a username lookup takes 1 to {self.lookup_batch} usernames"
            raise ValueError(msg)
        url = f"{self.base_url}/2/users/by?usernames={','.join(n for n in names if n)}"
        return PageRequest(url=url, headers={"accept": "application/json"})

    def parse_lookup(self, users: Sequence[User], response: RawResponse) -> dict[str, Resolution]:
        """Each user's id, or its status (not_found, suspended), from the lookup's answer."""
        if response.status in (401, 403):
            msg = (
                f"X API refused the bearer token (HTTP {response.status}): check "
                "FRIENDSCRAPE_X_BEARER_TOKENS and that the app has access to GET /2/users/by"
            )
            raise CredentialsRejectedError(msg, url=response.url)
        names = {user.user_id: _username(user) or "" for user in users}
        found = parse_users_by(
            response.body, status=response.status, url=response.url, usernames=list(names.values())
        )
        return {user_id: found[name.lower()] for user_id, name in names.items()}

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The GET for the first page (cursor None) or the page at ``cursor`` (a next_token).

        Raises ValueError for an empty cursor, or on the first page for a user
        ``check_user`` rejects (checked once per user: later pages are the same user's).
        """
        if cursor is None:
            reason = self.check_user(user)
            if reason is not None:
                raise ValueError(reason)
        account = user.resolved_id or user.user_id
        if not is_valid_user_id(account):
            msg = f"username {user.user_id[:40]!r} was not looked up"
            raise ValueError(msg)
        url = f"{self.base_url}/2/users/{account}/following?max_results={PAGE_SIZE}"
        if cursor is not None:
            url = f"{url}&pagination_token={quoted_cursor(cursor)}"
        return PageRequest(url=url, headers={"accept": "application/json"})

    def parse(self, user: User, response: RawResponse) -> Page:
        """Read one response; CredentialsRejectedError for 401/403, else a Page or ParseError."""
        if response.status in (401, 403):
            msg = (
                f"X API refused the bearer token (HTTP {response.status}): check "
                "FRIENDSCRAPE_X_BEARER_TOKENS and that the app has access to "
                "GET /2/users/:id/following"
            )
            raise CredentialsRejectedError(msg, url=response.url)
        return parse_following_page(response.body, status=response.status, url=response.url)


def _username(user: User) -> str | None:
    """The username ``user.user_id`` names (``@`` dropped), or None: an id or neither."""
    if is_valid_user_id(user.user_id):
        return None
    name = user.user_id.removeprefix("@")
    return name if USERNAME_RE.fullmatch(name) else None
