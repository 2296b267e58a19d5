"""The twitter-mobile source: URLs, pagination and page reading for the legacy mobile site.

First page ``GET {base}/{screen_name}/following``, later pages
``GET {base}/{screen_name}/following?cursor={cursor}``. The site itself was switched off
in December 2020, so the base URL is configurable: the local simulator, or any site
serving the same markup.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from friendscrape.errors import LoginWallError, ParseError
from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, User
from friendscrape.parse.twitter_mobile import is_valid_screen_name, parse_following_page
from friendscrape.sources import checked_base_url, quoted_cursor

DEFAULT_BASE_URL = "https://mobile.twitter.com"
LEGACY_SITE_NOTICE = (
    "the legacy mobile site (mobile.twitter.com) was shut down in December 2020: pass "
    "--base-url (e.g. the local simulator: python -m friendscrape.simulator) or use "
    "another --source"
)
"""Said once at the start of a run on the default base URL, which no longer answers."""
# Path segments of a login page: a redirect there is a login wall, not a user's list.
_LOGIN_SEGMENTS = frozenset({"login", "signin", "session", "sessions"})


class TwitterMobileSource:
    """Following lists from the legacy mobile site's ``/{screen_name}/following`` pages."""

    name: str = "twitter-mobile"
    paging_params: frozenset[str] = frozenset({"cursor"})
    case_blind_paths: bool = True
    """Screen names ignore letter case: the site answers ``/Alice/following`` too."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = checked_base_url(base_url, DEFAULT_BASE_URL)
        self._base_path = unquote(urlsplit(self.base_url).path)

    @property
    def credential_hosts(self) -> tuple[str, ...]:
        """None: the lists are public."""
        return ()

    def check_user(self, user: User) -> str | None:
        """Why this screen name cannot exist on the site (no request is sent), or None."""
        if is_valid_screen_name(user.screen_name):
            return None
        return f"screen name {user.screen_name[:40]!r} is not 1-15 letters, digits or underscores"

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The GET for the first page (cursor None) or the page at ``cursor``.

        Raises ValueError for an empty cursor, or on the first page for a screen name
        ``check_user`` rejects: a URL is never built from an unchecked name, and the name
        is checked once per user (a cursor comes from that user's earlier page).
        """
        if cursor is None:
            reason = self.check_user(user)
            if reason is not None:
                raise ValueError(reason)
        url = f"{self.base_url}/{user.screen_name}/following"
        if cursor is not None:
            url = f"{url}?cursor={quoted_cursor(cursor)}"
        return PageRequest(url=url, headers={"accept": "text/html"})

    def parse(self, user: User, response: RawResponse) -> Page:
        """Read one response for ``user`` into a Page; ParseError keeps the response URL."""
        self._check_landed_on_list(user, response.url)
        return parse_following_page(
            response.body, status=response.status, url=response.url, owner=user.screen_name
        )

    def _check_landed_on_list(self, user: User, url: str) -> None:
        """ParseError when a redirect left the user's following page (login, other user)."""
        if not url:
            return
        page = f"{self.base_url}/{user.screen_name}/following"
        if url == page or url.startswith(f"{page}?"):
            return  # where it was sent: the common case needs no URL parsing
        path = unquote(urlsplit(url).path).rstrip("/")
        expected = f"{self._base_path}/{user.screen_name}/following"
        if path.casefold() == expected.casefold():
            return
        if _LOGIN_SEGMENTS.intersection(path.casefold().split("/")):
            msg = (
                f"redirected to a login page ({path[:60]!r}), "
                f"not the following page of @{user.screen_name}"
            )
            raise LoginWallError(msg, url=url)
        msg = f"response is for {path[:100]!r}, not the following page of @{user.screen_name}"
        raise ParseError(msg, url=url)
