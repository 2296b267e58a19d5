"""The Source protocol: how one platform's following lists are requested and read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, Resolution, User


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


@runtime_checkable
class Lookups(Protocol):
    """A source that also takes handles, each looked up once for its account id.

    The run looks up every pending user ``needs_lookup`` names before collecting, in
    requests of up to ``lookup_batch`` users sent through the same HTTP client and
    limiter as the pages, and keeps the ids in the store (``User.resolved_id``).
    """

    lookup_batch: int

    def needs_lookup(self, user: User) -> bool:
        """True for a user named by a handle whose account id is not known yet."""

    def lookup_request(self, users: Sequence[User]) -> PageRequest:
        """The look-up of ``users`` (at most ``lookup_batch``, all ``needs_lookup``)."""

    def parse_lookup(
        self, users: Sequence[User], response: RawResponse
    ) -> Mapping[str, Resolution]:
        """One Resolution per user of ``users``, keyed by ``user_id``; ParseError else."""
