"""Parser of Mastodon ``GET /api/v1/accounts/:id/following`` responses (bytes -> Page).

A list page (HTTP 200) is a JSON array of Account entities (``id``, ``username``,
``acct``...); the next page is the ``Link`` header's ``rel="next"`` URL, absent on the
last page (docs.joinmastodon.org, methods/accounts "Get account's following" and
"Paginating through API responses"). Each followed account is kept as
``acct@instance`` (a local account's ``acct`` has no domain, so the instance that
answered is added) and its id as ``id@instance``: account ids are local to the
instance that gives them, and that form can be collected in turn.

Statuses, from the documented responses: 404 with the error entity
``{"error": "Record not found"}`` -> ``not_found`` (any other 404, such as a proxy's
page for a wrong base URL, is a ParseError: the account may well exist); 410 Gone ->
``suspended`` (Mastodon answers 410 for a suspended account). An account that hides
its network gets HTTP 200 with an empty array, which no field of this response tells
apart from following nobody: it is recorded ``ok`` with an empty list. 401/403 (an
instance that refuses unauthenticated API use) and anything else raise
``ParseError`` with the instance's words kept. A 200 that is no answer of this API at
all (empty, not JSON, JSON but not an array) raises ``NotPlatformAnswerError``.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

import msgspec

from friendscrape.errors import NotPlatformAnswerError, ParseError
from friendscrape.models import Page, Resolution, Status
from friendscrape.parse.json_pages import (
    all_fullmatch,
    clip,
    decode_typed,
    lines_re,
    load_json,
    text_field,
)

ACCOUNT_ID_RE: Final = re.compile(r"[A-Za-z0-9]{1,64}")
"""An account id (fullmatch): Mastodon's are numbers, sent as strings; other servers
of the same API use letters too, and the docs promise only a string."""
INSTANCE_RE: Final = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
"""An instance host name (fullmatch, lower case): a domain name of two or more labels."""
_ACCT_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}(?:@[A-Za-z0-9.-]{1,253})?")
_IDS: Final = lines_re(ACCOUNT_ID_RE.pattern)
_ACCTS: Final = lines_re(_ACCT_RE.pattern)
_RECORD_NOT_FOUND: Final = "HTTP 404: Record not found"
_LINK_RE: Final = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL_NEXT_RE: Final = re.compile(r';\s*rel\s*=\s*"?([^";,]*)"?', re.IGNORECASE)


# gc=False: these hold only strings and numbers, so never a cycle; a page makes hundreds,
# and untracked they do not set off the garbage collector.
class _Account(msgspec.Struct, gc=False):
    id: str
    acct: str


_ACCOUNTS: Final = msgspec.json.Decoder(list[_Account])


def parse_following_page(
    body: bytes, *, status: int, url: str = "", link: str | None = None, instance: str
) -> Page:
    """Read one response for an account of ``instance`` into a Page.

    ``link`` is the response's ``Link`` header. The next page's cursor is its full
    ``rel="next"`` URL, which must stay on the host that answered (``url``'s): a link
    elsewhere is an error, never followed. Raises only ``ParseError``.
    """
    if status == 404:
        detail = _http_detail(404, body)
        if detail != _RECORD_NOT_FOUND:
            msg = f"{detail}, not Mastodon's 'Record not found' answer (a wrong base URL?)"
            raise ParseError(msg, url=url)
        return Page(status=Status.NOT_FOUND, detail=detail)
    if status == 410:
        return Page(status=Status.SUSPENDED, detail=_http_detail(410, body))
    if status in (401, 403):
        msg = (
            f"the instance refuses unauthenticated access to following lists "
            f"({_http_detail(status, body)})"
        )
        raise ParseError(msg, url=url)
    if status != 200:
        raise ParseError(f"unexpected {_http_detail(status, body)}", url=url)
    listed = _accounts_in_bulk(body)
    accts, ids = listed if listed is not None else _accounts(body, url)
    names = [acct if "@" in acct else f"{acct}@{instance}" for acct in accts]
    # An empty page after a cursor is a normal end: when the last page is exactly full,
    # Mastodon still links to a next page, and that page is empty with no link.
    next_url = next_link(link)
    if next_url is not None:
        _check_same_origin(next_url, url)
    return Page(
        names=tuple(names), ids=tuple([f"{id_}@{instance}" for id_ in ids]), next_cursor=next_url
    )


def _accounts_in_bulk(body: bytes) -> tuple[list[str], list[str]] | None:
    """The ``acct`` and ``id`` of every account of a page as Mastodon sends it, checked in
    bulk; None for anything else, which ``_accounts`` reads and names."""
    accounts = decode_typed(_ACCOUNTS, body)
    if accounts is None:
        return None
    accts = [account.acct for account in accounts]
    ids = [account.id for account in accounts]
    if not all_fullmatch(_ACCTS, accts) or not all_fullmatch(_IDS, ids):
        return None
    return accts, ids


def _accounts(body: bytes, url: str) -> tuple[list[str], list[str]]:
    """The ``acct`` and ``id`` of every account, item by item, or ParseError."""
    doc = load_json(body, url)
    if not isinstance(doc, list):
        msg = f"expected a JSON array of accounts, got {type(doc).__name__}"
        raise NotPlatformAnswerError(msg, url=url)
    accts: list[str] = []
    ids: list[str] = []
    for index, item in enumerate(doc, 1):
        where = f"account {index}"
        if not isinstance(item, dict):
            raise ParseError(f"{where} is not an object", url=url)
        account_id = text_field(item, "id", where, url)
        acct = text_field(item, "acct", where, url)
        if ACCOUNT_ID_RE.fullmatch(account_id) is None:
            raise ParseError(f"{where} has an invalid id {account_id[:40]!r}", url=url)
        if _ACCT_RE.fullmatch(acct) is None:
            raise ParseError(f"{where} has an invalid acct {acct[:60]!r}", url=url)
        accts.append(acct)
        ids.append(account_id)
    return accts, ids


def parse_lookup(body: bytes, *, status: int, url: str = "", acct: str) -> Resolution:
    """Read ``GET /api/v1/accounts/lookup?acct=...`` (docs.joinmastodon.org, methods/
    accounts "Lookup account ID from Webfinger address"): HTTP 200 is the Account entity,
    whose ``id`` is kept; 404 "Record not found" is ``not_found``; 410 ``suspended``.
    Anything else raises ParseError (the account may well exist)."""
    if status == 404:
        detail = _http_detail(404, body)
        if detail != _RECORD_NOT_FOUND:
            msg = f"{detail}, not Mastodon's 'Record not found' answer (a wrong base URL?)"
            raise ParseError(msg, url=url)
        return Resolution(None, Status.NOT_FOUND, f"no account {clip(acct)}: {detail}")
    if status == 410:
        return Resolution(None, Status.SUSPENDED, _http_detail(410, body))
    if status != 200:
        raise ParseError(f"account lookup: unexpected {_http_detail(status, body)}", url=url)
    doc = load_json(body, url)
    if not isinstance(doc, dict) or "id" not in doc:
        # Every Account entity has an id: without one, this is no answer of the API.
        got = type(doc).__name__ if not isinstance(doc, dict) else "an object without 'id'"
        msg = f"account lookup: expected an Account object, got {got}"
        raise NotPlatformAnswerError(msg, url=url)
    account_id = text_field(doc, "id", "account", url)
    if ACCOUNT_ID_RE.fullmatch(account_id) is None:
        raise ParseError(f"account lookup: invalid id {account_id[:40]!r}", url=url)
    return Resolution(account_id)


def next_link(link: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), or None."""
    if not link:
        return None
    for match in _LINK_RE.finditer(link):
        rels = {
            rel.casefold()
            for params in _REL_NEXT_RE.findall(match.group(2))
            for rel in params.split()
        }
        if "next" in rels and match.group(1).strip():
            return match.group(1).strip()
    return None


def _check_same_origin(next_url: str, url: str) -> None:
    try:
        target = urlsplit(next_url)
        target.port  # noqa: B018 - read for its check: a port out of range raises
    except ValueError:
        msg = f"next link is not a valid URL: {next_url[:100]!r}"
        raise ParseError(msg, url=url) from None
    if target.scheme not in {"http", "https"} or not target.netloc:
        raise ParseError(f"next link is not an absolute URL: {next_url[:100]!r}", url=url)
    if not url:
        return
    here = urlsplit(url)
    if (target.scheme, target.netloc.lower()) != (here.scheme, here.netloc.lower()):
        msg = f"next link leaves the instance ({target.netloc[:100]}); not followed"
        raise ParseError(msg, url=url)


def _http_detail(status: int, body: bytes) -> str:
    """``HTTP 404: Record not found``: the status and the error entity's text, if any."""
    try:
        doc = load_json(body, "")
    except ParseError:
        doc = None
    message = doc.get("error") if isinstance(doc, dict) else None
    return (
        f"HTTP {status}: {clip(message)}"
        if isinstance(message, str) and message
        else (f"HTTP {status}")
    )
