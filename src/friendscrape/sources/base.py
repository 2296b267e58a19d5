"""The Source protocol: how one platform's following lists are requested and read."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Final, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

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
    paging_params: frozenset[str]
    """The query parameters a later page's request may change or drop (cursor, page
    size); every other part of its URL must be the first page's (see ``other_list``)."""
    case_blind_paths: bool
    """Whether the platform's paths ignore letter case (screen names on the mobile
    site): ``/Alice/following`` is then the same list as ``/alice/following``."""

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


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class InvalidURLError(ValueError):
    """A URL an upstream gave that cannot be read (a bad port, an unclosed ``[``)."""


def other_list(
    first: str, url: str, paging: frozenset[str], *, case_blind: bool = False
) -> str | None:
    """What makes ``url`` ask for another list than ``first`` does (another host, account
    or endpoint, other parameters), or None when only ``paging`` parameters differ.

    Every page of a user's list is checked against its first page's request, so an
    upstream cannot walk a collection into another account's list, whatever the source
    takes its cursor from (a token, a link). Raises InvalidURLError for a URL that
    cannot be read.
    """
    scheme, host, port, path, params = _first_parts(first, paging, case_blind=case_blind)
    query = _query_added(first, url)
    if query is not None:
        # The first URL and a query (the HTML source's pages): same host, port and path.
        if params != _fixed_params(query, paging):
            return f"other query parameters ({query[:100]!r})"
        return None
    try:
        there = urlsplit(url)
        there_port = _port(there.scheme, there.port)
    except ValueError as exc:
        raise InvalidURLError(str(exc)) from None
    if scheme != there.scheme.lower() or host != there.hostname or port != there_port:
        return f"another host ({there.netloc[:100]!r})"
    other = there.path.rstrip("/")
    if case_blind:
        other = other.casefold()
    # Escapes of the same characters name the same path, except an escaped "/": a
    # server may read that as a separator or as part of a name.
    if path != other and (unquote(path) != unquote(other) or "%2f" in f"{path}{other}".lower()):
        return f"another account or endpoint ({there.path[:100]!r})"
    if params != _fixed_params(there.query, paging):
        return f"other query parameters ({there.query[:100]!r})"
    return None


def _query_added(first: str, url: str) -> str | None:
    """The query of ``url`` when ``url`` is ``first`` (without query or fragment), ``?``
    and a query that splitting ``url`` would keep as it is (no fragment, no tab or line
    end); None for any other URL, which is then split in full."""
    end = len(first)
    if len(url) <= end or url[end] != "?" or not url.startswith(first):
        return None
    query = url[end + 1 :]
    if "?" in first or "#" in first or "#" in query or not query.isprintable():
        return None
    return query


@functools.lru_cache(maxsize=4096)
def _first_parts(
    first: str, paging: frozenset[str], *, case_blind: bool
) -> tuple[str, str | None, int | None, str, tuple[tuple[str, str], ...]]:
    """What ``other_list`` compares of a list's first request (its scheme, host, port,
    path and fixed parameters), read once a list rather than at each of its pages: the
    HTML source checks a page of 20 names at a time."""
    try:
        here = urlsplit(first)
        port = _port(here.scheme, here.port)
    except ValueError as exc:
        raise InvalidURLError(str(exc)) from None
    path = here.path.rstrip("/")
    if case_blind:
        path = path.casefold()
    return (here.scheme.lower(), here.hostname, port, path, _fixed_params(here.query, paging))


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else _DEFAULT_PORTS.get(scheme.lower())


def _fixed_params(query: str, paging: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The parameters of ``query`` that are not ``paging``, in a comparable order."""
    if not query:
        return ()
    pairs = parse_qsl(query, keep_blank_values=True)
    return tuple(sorted((k, v) for k, v in pairs if k not in paging))
