"""The mastodon source: ``GET /api/v1/accounts/:id/following`` on each user's instance.

Mastodon serves following lists without login since 4.0 (docs.joinmastodon.org,
methods/accounts "Get account's following"). The account is ``User.screen_name`` in
one of two forms that map to the API without an extra request:

- ``ID@INSTANCE`` with a numeric Mastodon id, e.g. ``109302436954721982@mastodon.social``;
- an API URL ``https://INSTANCE/api/v1/accounts/ID`` (``/following`` may follow), where
  ``ID`` may also hold letters (other servers of the same API use such ids);

or a handle, looked up once with ``GET /api/v1/accounts/lookup?acct=USERNAME`` on its
instance (docs.joinmastodon.org, methods/accounts "Lookup account ID from Webfinger
address"): ``@alice@INSTANCE``, ``alice@INSTANCE`` (a username that is not all digits)
or the profile address ``https://INSTANCE/@alice``. The id found is kept in the store
(``User.resolved_id``); an unknown handle is ``not_found``.

The first page is ``https://INSTANCE/api/v1/accounts/ID/following?limit=80``; the next
page is the ``Link`` header's ``rel="next"`` URL, used whole as the cursor. With a base
URL set (the simulator, a proxy), that base replaces ``https://INSTANCE`` for every
user, and the instance still names the accounts collected (``acct@INSTANCE``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote, urlsplit

from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, Resolution, User
from friendscrape.parse.mastodon import INSTANCE_RE, parse_following_page, parse_lookup
from friendscrape.sources import checked_base_url

PAGE_SIZE = 80
"""``limit``: the largest page the endpoint gives (default 40)."""
_API_PATH_RE: Final = re.compile(r"/api/v1/accounts/([A-Za-z0-9]{1,64})(?:/following)?/?")
_USERNAME_RE: Final = re.compile(r"[A-Za-z0-9_]+(?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
"""A Mastodon username (fullmatch), as the server's Account model validates it."""
_PROFILE_PATH_RE: Final = re.compile(r"/@([^/@]{1,64})/?")


def parse_account(ref: str) -> tuple[str, str] | None:
    """``(account_id, instance)`` of ``ID@INSTANCE`` or an API account URL, else None."""
    if ref.startswith(("https://", "http://")):
        parts = urlsplit(ref)
        match = _API_PATH_RE.fullmatch(parts.path)
        if match is None or parts.query or parts.fragment or parts.port is not None:
            return None
        account_id, instance = match.group(1), (parts.hostname or "")
    else:
        account_id, at, instance = ref.partition("@")
        if not at:
            return None
        instance = instance.lower()
        # Digits only: ``alice@mastodon.social`` is a username, and reading it as an id
        # would record a wrong "not found" instead of refusing it.
        if not (account_id.isascii() and account_id.isdigit()) or len(account_id) > 20:
            return None
    if len(instance) > 253 or INSTANCE_RE.fullmatch(instance) is None:
        return None
    return account_id, instance


def parse_handle(ref: str) -> tuple[str, str] | None:
    """``(username, instance)`` of ``@alice@INSTANCE``, ``alice@INSTANCE`` or
    ``https://INSTANCE/@alice``, else None (an ``ID@INSTANCE`` is not a handle)."""
    if ref.startswith(("https://", "http://")):
        parts = urlsplit(ref)
        match = _PROFILE_PATH_RE.fullmatch(parts.path)
        if match is None or parts.query or parts.fragment or parts.port is not None:
            return None
        username, instance = match.group(1), (parts.hostname or "")
    else:
        username, at, instance = ref.removeprefix("@").partition("@")
        instance = instance.lower()
        if not at or username.isdigit():
            return None
    if len(username) > 64 or _USERNAME_RE.fullmatch(username) is None:
        return None
    if len(instance) > 253 or INSTANCE_RE.fullmatch(instance) is None:
        return None
    return username, instance


class MastodonSource:
    """Following lists from each user's Mastodon instance, 80 accounts a page."""

    name: str = "mastodon"
    paging_params: frozenset[str] = frozenset({"max_id", "min_id", "since_id", "limit"})
    """A ``rel="next"`` link may change these alone (docs.joinmastodon.org, "Paginating
    through API responses"): the account and endpoint stay the first page's."""
    case_blind_paths: bool = False
    lookup_batch: int = 1
    """The lookup endpoint takes one ``acct`` a request."""

    def __init__(self, base_url: str | None = None) -> None:
        # No default: each user's own instance is the base unless one is given.
        self.base_url = checked_base_url(base_url, "") if base_url else None

    @property
    def credential_hosts(self) -> tuple[str, ...]:
        """None: the lists are public."""
        return ()

    def check_user(self, user: User) -> str | None:
        """Why ``user.screen_name`` names no account on an instance, or None."""
        ref = user.screen_name
        if parse_account(ref) is not None or parse_handle(ref) is not None:
            return None
        return (
            f"{ref[:80]!r} is not ID@INSTANCE, https://INSTANCE/api/v1/accounts/ID, "
            "@USERNAME@INSTANCE or https://INSTANCE/@USERNAME"
        )

    def needs_lookup(self, user: User) -> bool:
        """A handle whose account id the store does not hold yet."""
        return (
            user.resolved_id is None
            and parse_account(user.screen_name) is None
            and parse_handle(user.screen_name) is not None
        )

    def lookup_request(self, users: Sequence[User]) -> PageRequest:
        """``GET {instance}/api/v1/accounts/lookup?acct=USERNAME`` for the one user."""
        (user,) = users
        handle = parse_handle(user.screen_name)
        if handle is None:
            raise ValueError(self.check_user(user))
        username, instance = handle
        url = f"{self._base(instance)}/api/v1/accounts/lookup?acct={quote(username, safe='')}"
        return PageRequest(url=url, headers={"accept": "application/json"})

    def parse_lookup(self, users: Sequence[User], response: RawResponse) -> dict[str, Resolution]:
        """The id the instance gives the one user's handle, or its status."""
        (user,) = users
        found = parse_lookup(
            response.body, status=response.status, url=response.url, acct=user.screen_name
        )
        return {user.user_id: found}

    def _account(self, user: User) -> tuple[str, str]:
        account = parse_account(user.screen_name)
        if account is not None:
            return account
        handle = parse_handle(user.screen_name)
        if handle is not None and user.resolved_id is not None:
            return user.resolved_id, handle[1]
        if handle is not None:
            msg = f"handle {user.screen_name[:80]!r} was not looked up"
            raise ValueError(msg)
        raise ValueError(self.check_user(user))

    def _base(self, instance: str) -> str:
        return self.base_url if self.base_url is not None else f"https://{instance}"

    def page_request(self, user: User, cursor: str | None) -> PageRequest:
        """The GET for the first page (cursor None) or the ``rel="next"`` URL ``cursor``.

        Raises ValueError for a user ``check_user`` rejects, or a cursor that is not a
        URL on the user's instance (or the base URL).
        """
        account_id, instance = self._account(user)
        base = self._base(instance)
        headers = {"accept": "application/json"}
        if cursor is None:
            url = f"{base}/api/v1/accounts/{account_id}/following?limit={PAGE_SIZE}"
            return PageRequest(url=url, headers=headers)
        if not _same_origin(cursor, base):
            msg = f"cursor {cursor[:100]!r} is not a URL on {base}"
            raise ValueError(msg)
        return PageRequest(url=cursor, headers=headers)

    def parse(self, user: User, response: RawResponse) -> Page:
        """Read one response for ``user`` into a Page; ParseError keeps the response URL."""
        _account_id, instance = self._account(user)
        return parse_following_page(
            response.body,
            status=response.status,
            url=response.url,
            link=response.headers.get("link"),
            instance=instance,
        )


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())
