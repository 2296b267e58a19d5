"""The Source protocol: how one platform's following lists are requested and read."""

from __future__ import annotations

from typing import Protocol

from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, User


class Source(Protocol):
    """A platform's following lists, one page at a time.

    Fetching is not the source's job: the pipeline sends ``page_request`` through the
    shared HTTP client (timeouts, retries, limits) and hands the response to ``parse``.
    ``parse`` raises ParseError for a page it cannot read; it never returns a short
    list as if it were complete.
    """

    name: str

    @property
    def credential_hosts(self) -> tuple[str, ...]:
        """The hosts whose requests carry the run's API credentials (none: a public API).

        The run attaches its credential pool to these hosts' limiter slots, so a source
        names where tokens go without ever handling one.
        """

    def check_user(self, user: User) -> str | None:
        """Why this user cannot exist on the platform (no request is sent), or None."""

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The request for the first page (cursor None) or the page at ``cursor``.

        The user is checked once, on the first page (ValueError if ``check_user`` rejects
        it): a cursor comes from that user's earlier page.
        """

    def parse(self, user: User, response: RawResponse) -> Page:
        """Read one response into a Page (a list page or the account's status)."""
