"""The x-api source: X API v2 following lookups, by numeric user id.

``GET {base}/2/users/{id}/following?max_results=1000[&pagination_token=T]``
(docs.x.com, "GET /2/users/:id/following"). The user is ``User.user_id``, which must be
a numeric X user id; ``screen_name`` is only carried along. Bearer tokens are not this
module's concern: the HTTP layer's credential pool attaches ``Authorization`` for the
API host and reads the rate-limit headers, so no token ever passes through a source.

An HTTP 401 or 403 answer is about the token or the app (revoked, wrong, or the app
not enrolled in a project), not about the user: it raises ``CredentialsRejectedError``,
which ends the run with one message rather than marking every user failed.
"""

from __future__ import annotations

from typing import Final

from yarl import URL

from friendscrape.errors import CredentialsRejectedError
from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, User
from friendscrape.parse.x_api import is_valid_user_id, parse_following_page
from friendscrape.sources import checked_base_url, quoted_cursor

DEFAULT_BASE_URL = "https://api.x.com"
API_HOSTS: Final = ("api.x.com", "api.twitter.com")
"""The X API's hosts: the bearer-token pool goes to these and to the base URL's host."""
PAGE_SIZE = 1000
"""``max_results``: the largest page the endpoint gives (1-1000)."""


class XApiSource:
    """Following lists from X API v2, ``max_results=1000`` a page."""

    name: str = "x-api"

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
        """Why ``user.user_id`` cannot be an X user id (no request is sent), or None."""
        if is_valid_user_id(user.user_id):
            return None
        return f"user id {user.user_id[:40]!r} is not a numeric X user id"

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The GET for the first page (cursor None) or the page at ``cursor`` (a next_token).

        Raises ValueError for an empty cursor, or on the first page for a user
        ``check_user`` rejects (checked once per user: later pages are the same user's).
        """
        if cursor is None:
            reason = self.check_user(user)
            if reason is not None:
                raise ValueError(reason)
        url = f"{self.base_url}/2/users/{user.user_id}/following?max_results={PAGE_SIZE}"
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
