"""Parser of X API v2 following lookups (``GET /2/users/:id/following``): bytes -> Page.

A list page is a JSON object with ``data`` (``{id, name, username}`` per followed
account), ``meta.result_count`` and ``meta.next_token`` (absent on the last page); a
user who follows nobody gets no ``data``. Problems with the requested user come as
HTTP 200 with an ``errors`` array and no ``data`` (docs.x.com, "Error handling"):

- type ``.../problems/resource-not-found``: unknown id (``not_found``), or, with a
  "User has been suspended" detail or "Forbidden" title, a suspended one (``suspended``);
- type ``.../problems/not-authorized-for-resource``: a protected account (``protected``).

Anything else raises ``ParseError``, with the platform's words kept; a body that is no
X API answer at all (empty, not JSON, an object with none of ``data``, ``errors`` and
``meta``, or with one of them not a list or object) raises ``NotPlatformAnswerError``.
HTTP 401/403 (the token) and 429 (the limit) are the source's and the HTTP client's
concern, not a page.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Final

import msgspec

from friendscrape.errors import NotPlatformAnswerError, ParseError
from friendscrape.models import Page, Resolution, Status
from friendscrape.parse.json_pages import (
    ascii_charset,
    clip,
    decode_typed,
    joined_fullmatch,
    joined_made_of,
    lines_re,
    list_field,
    load_object,
    optional_count,
    optional_text,
    text_field,
    unescaped,
)

USER_ID_RE: Final = re.compile(r"[1-9][0-9]{0,19}")
"""An X user id: a positive decimal number (fullmatch); ids are 64-bit snowflakes."""
USERNAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,15}")
"""An X username (fullmatch): 1-15 letters, digits or underscores."""

# For the bulk check: ids of up to 19 digits, or of 20 below 18 * 10**18, are all below
# 2**64 (about 1.845 * 10**19); a page with an id above that takes the careful path,
# which compares it with the bound. The form starting 1[0-7] takes 19 digits or 20 (the
# greedy count gives the 20 when there are): X's ids are mostly 19 digits starting so,
# which a 20-digit form of its own had matched digit by digit and backed out of before
# the shorter form matched them again (some 30 microseconds a page of 1,000 such ids).
BULK_ID: Final = r"1[0-7][0-9]{17,18}|[1-9][0-9]{0,18}"
_IDS: Final = lines_re(BULK_ID)
# Usernames are 1-15 characters (their bound is on _User.username) of these.
_USERNAME_CHARS: Final = ascii_charset(string.ascii_letters + string.digits + "_")

_NOT_FOUND: Final = "/problems/resource-not-found"
_NOT_AUTHORIZED: Final = "/problems/not-authorized-for-resource"


def is_valid_user_id(value: str) -> bool:
    """Whether ``value`` can be an X user id."""
    return USER_ID_RE.fullmatch(value) is not None and int(value) < 1 << 64


def parse_users_by(
    body: bytes, *, status: int, url: str = "", usernames: list[str]
) -> dict[str, Resolution]:
    """Read ``GET /2/users/by?usernames=...`` (docs.x.com, "GET /2/users/by") into one
    Resolution per asked username (keys in lower case: usernames ignore letter case).

    Found accounts are in ``data`` (``{id, name, username}``); each username the API
    cannot give is an ``errors`` item whose ``value`` is the username: "User has been
    suspended" (title "Forbidden") is ``suspended``, any other ``resource-not-found``
    is ``not_found``. A username the answer does not mention is ``failed`` alone, with
    that reason; any status but 200 raises ParseError (401/403 are the source's concern).
    """
    if status != 200:
        msg = f"unexpected HTTP status {status} for a username lookup"
        detail = _problem_detail(body)
        raise ParseError(f"{msg}: {detail}" if detail else msg, url=url)
    doc = load_object(body, url)
    data = list_field(doc, "data", "response", url, error=NotPlatformAnswerError)
    errors = list_field(doc, "errors", "response", url, error=NotPlatformAnswerError)
    if data is None and errors is None:
        raise NotPlatformAnswerError("response has neither data nor errors", url=url)
    found: dict[str, Resolution] = {}
    for index, item in enumerate(data or [], 1):
        if not isinstance(item, dict):
            raise ParseError(f"data item {index} is not an object", url=url)
        user_id = text_field(item, "id", f"data item {index}", url)
        username = text_field(item, "username", f"data item {index}", url)
        if not is_valid_user_id(user_id):
            raise ParseError(f"data item {index} has an invalid id {user_id[:40]!r}", url=url)
        found[username.lower()] = Resolution(user_id)
    for item in errors or []:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            continue
        name = item["value"].lower()
        detail = clip(str(item.get("detail") or item.get("title") or "error"))
        kind = str(item.get("type", ""))
        if "suspended" in detail.lower() or item.get("title") == "Forbidden":
            found[name] = Resolution(None, Status.SUSPENDED, detail)
        elif kind.endswith(_NOT_FOUND):
            found[name] = Resolution(None, Status.NOT_FOUND, detail)
        else:
            raise ParseError(f"username lookup: {detail}", url=url)
    for name in usernames:
        if name.lower() not in found:
            # Failed alone (``--retry-failed`` looks it up again): the others of the
            # batch were answered, and are collected.
            detail = f"lookup: the answer says nothing of username {clip(name)!r} [{url}]"
            found[name.lower()] = Resolution(None, Status.FAILED, detail)
    return found


# gc=False: these hold only strings and numbers, so never a cycle; a page makes hundreds,
# and untracked they do not set off the garbage collector.
class _User(msgspec.Struct, gc=False):
    id: str
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=15)]


class _Meta(msgspec.Struct, gc=False):
    result_count: int | None = None
    next_token: str | None = None


class _ListPage(msgspec.Struct):
    """A list page as the API sends it (other fields are skipped unread)."""

    meta: _Meta
    data: list[_User] | None = None
    errors: msgspec.Raw | None = None


_LIST_PAGE: Final = msgspec.json.Decoder(_ListPage)


def parse_following_page(body: bytes, *, status: int, url: str = "") -> Page:
    """Read one 200 response of the following lookup into a Page; raises only ParseError."""
    if status != 200:
        msg = f"unexpected HTTP status {status} for a following lookup"
        detail = _problem_detail(body)
        raise ParseError(f"{msg}: {detail}" if detail else msg, url=url)
    page = _list_page_in_bulk(body)
    if page is not None:
        return page
    doc = load_object(body, url)
    data = list_field(doc, "data", "response", url, error=NotPlatformAnswerError)
    errors = list_field(doc, "errors", "response", url, error=NotPlatformAnswerError)
    if data is None and errors:
        return _user_problem(errors, url)
    # With data present, errors concern expanded objects (pinned posts), not the user.
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        msg = "response has neither data, errors nor meta"
        if data is None and errors is None:
            raise NotPlatformAnswerError(msg, url=url)  # none of an X API answer's fields
        raise ParseError(msg, url=url)
    items = data or []
    names: list[str] = []
    ids: list[str] = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ParseError(f"data item {index} is not an object", url=url)
        user_id = text_field(item, "id", f"data item {index}", url)
        username = text_field(item, "username", f"data item {index}", url)
        if not is_valid_user_id(user_id):
            raise ParseError(f"data item {index} has an invalid id {user_id[:40]!r}", url=url)
        if USERNAME_RE.fullmatch(username) is None:
            msg = f"data item {index} has an invalid username {username[:40]!r}"
            raise ParseError(msg, url=url)
        ids.append(user_id)
        names.append(username)
    count = optional_count(meta, "result_count", "meta", url)
    if count is not None and count != len(items):
        msg = f"meta.result_count is {count} but the page lists {len(items)} accounts"
        raise ParseError(msg, url=url)
    next_token = optional_text(meta, "next_token", "meta", url)
    return Page(names=tuple(names), ids=tuple(ids), next_cursor=next_token)


def _list_page_in_bulk(body: bytes) -> Page | None:
    """The page of a list as the API sends it, checked in bulk; None for anything else
    (an error, an odd field, an invalid item), which the careful path reads and names."""
    doc = decode_typed(_LIST_PAGE, body)
    if doc is None or doc.errors is not None:
        return None
    items = doc.data or []
    ids = [item.id for item in items]
    names = [item.username for item in items]
    meta = doc.meta
    if (meta.result_count is not None and meta.result_count != len(items)) or (
        meta.next_token == ""
    ):
        return None
    line_free = unescaped(body)  # the common case: no line feed to look for
    ids_text = joined_fullmatch(_IDS, ids, line_free=line_free)
    names_text = (
        joined_made_of(_USERNAME_CHARS, names, line_free=line_free)
        if ids_text is not None
        else None
    )
    if ids_text is None or names_text is None:
        return None
    # The checks' joined text goes with the page: the store keeps lists in that form.
    joined = (names_text, ids_text)
    return Page(names=tuple(names), ids=tuple(ids), next_cursor=meta.next_token, joined=joined)


def _user_problem(errors: list[Any], url: str) -> Page:
    """The account state told by an ``errors`` array about the requested user."""
    first = errors[0]
    if not isinstance(first, dict):
        raise ParseError("errors[0] is not an object", url=url)
    kind = str(first.get("type") or "")
    detail = clip(first.get("detail") or first.get("title") or kind or "no detail")
    title = str(first.get("title") or "")
    if kind.endswith(_NOT_FOUND):
        if "suspended" in detail.casefold() or title == "Forbidden":
            return Page(status=Status.SUSPENDED, detail=detail)
        return Page(status=Status.NOT_FOUND, detail=detail)
    if kind.endswith(_NOT_AUTHORIZED):
        return Page(status=Status.PROTECTED, detail=detail)
    msg = f"unknown X API problem {kind[:100]!r}: {detail}"
    raise ParseError(msg, url=url)


def _problem_detail(body: bytes) -> str:
    """The ``title``/``detail`` of a problem document, or nothing when there is none."""
    try:
        doc = load_object(body, "")
    except ParseError:
        return ""
    parts = [clip(doc[key]) for key in ("title", "detail") if isinstance(doc.get(key), str)]
    return " - ".join(dict.fromkeys(parts))
