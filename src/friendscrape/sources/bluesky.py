"""The bluesky source: ``app.bsky.graph.getFollows`` on the public AppView, no login.

``GET {base}/xrpc/app.bsky.graph.getFollows?actor=A&limit=100[&cursor=C]``
(docs.bsky.app). The account is ``User.screen_name``: a handle (a domain name such as
``alice.bsky.social``) or a DID (``did:plc:<24 base32>`` or ``did:web:<host>``);
``user_id`` is the caller's own key. Each follow is kept twice: its DID in
``friend_ids`` (stable) and its handle in ``friend_names`` (can change).
"""

from __future__ import annotations

from urllib.parse import quote

from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, User
from friendscrape.parse.bluesky import is_valid_actor, parse_follows_page
from friendscrape.sources import checked_base_url, quoted_cursor

DEFAULT_BASE_URL = "https://public.api.bsky.app"
PAGE_SIZE = 100
"""``limit``: the largest page getFollows gives (1-100)."""
_METHOD = "/xrpc/app.bsky.graph.getFollows"


class BlueskySource:
    """Following lists from a Bluesky AppView, 100 follows a page."""

    name: str = "bluesky"
    paging_params: frozenset[str] = frozenset({"cursor", "limit"})
    case_blind_paths: bool = False

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = checked_base_url(base_url, DEFAULT_BASE_URL)

    @property
    def credential_hosts(self) -> tuple[str, ...]:
        """None: the lists are public."""
        return ()

    def check_user(self, user: User) -> str | None:
        """Why ``user.screen_name`` is neither a handle nor a DID (no request sent), or None."""
        if is_valid_actor(user.screen_name):
            return None
        return (
            f"{user.screen_name[:60]!r} is not a Bluesky handle (a domain name) "
            "or a DID (did:plc:... or did:web:...)"
        )

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The GET for the first page (cursor None) or the page at ``cursor``.

        Raises ValueError for an empty cursor, or on the first page for a user
        ``check_user`` rejects (checked once per user: later pages are the same user's).
        """
        if cursor is None:
            reason = self.check_user(user)
            if reason is not None:
                raise ValueError(reason)
        actor = quote(user.screen_name, safe=":")
        url = f"{self.base_url}{_METHOD}?actor={actor}&limit={PAGE_SIZE}"
        if cursor is not None:
            url = f"{url}&cursor={quoted_cursor(cursor)}"
        return PageRequest(url=url, headers={"accept": "application/json"})

    def parse(self, user: User, response: RawResponse) -> Page:
        """Read one response for ``user`` into a Page; ParseError keeps the response URL."""
        return parse_follows_page(
            response.body, status=response.status, url=response.url, actor=user.screen_name
        )
