"""Parser of Bluesky ``app.bsky.graph.getFollows`` responses (bytes -> Page).

A list page (HTTP 200) is ``{"subject": profileView, "follows": [profileView],
"cursor"?}``; each profileView has a ``did`` and a ``handle`` (docs.bsky.app,
``app.bsky.graph.getFollows``). ``cursor`` is absent on the last page. ``subject``
may carry ``followsCount`` (a profileViewDetailed does, a plain profileView does not);
when present it is the page's following count.

Errors are XRPC error bodies ``{"error": NAME, "message": TEXT}`` with HTTP 400:
``InvalidRequest`` "Profile not found" / "Actor not found" -> ``not_found``,
``AccountTakedown`` -> ``suspended``, ``AccountDeactivated`` -> ``deactivated``. Any
other name or message raises ``ParseError`` with the message kept: an error the parser
does not know is never read as an empty list. A 200 that is no getFollows answer at all
(empty, not JSON, no ``subject`` object or no ``follows`` list) raises
``NotPlatformAnswerError``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from friendscrape.errors import NotPlatformAnswerError, ParseError
from friendscrape.models import Page, Status
from friendscrape.parse.json_pages import (
    all_fullmatch,
    clip,
    decode_typed,
    lines_re,
    list_field,
    load_json,
    load_object,
    optional_count,
    optional_text,
    text_field,
)

HANDLE_RE: Final = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
"""A handle (fullmatch): a domain name of two or more labels, the last not starting
with a digit (atproto handle syntax); at most 253 characters, checked apart."""
PLC_DID_RE: Final = re.compile(r"did:plc:[a-z2-7]{24}")
"""A ``did:plc`` identifier (fullmatch): 24 characters of lower-case base32."""
WEB_DID_RE: Final = re.compile(r"did:web:" + HANDLE_RE.pattern + r"(?:%3A[0-9]{1,5})?")
"""A ``did:web`` identifier (fullmatch): a host name, its port written ``%3A``."""
# Any DID method, for DIDs the platform hands back (atproto DID syntax).
_ANY_DID_RE: Final = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_HANDLE_MAX: Final = 253
_DID_MAX: Final = 2048

_DIDS: Final = lines_re(_ANY_DID_RE.pattern)
_HANDLES: Final = lines_re(HANDLE_RE.pattern)

_NOT_FOUND_MESSAGES: Final = ("profile not found", "actor not found")
_STATUS_BY_ERROR: Final = {
    "AccountTakedown": Status.SUSPENDED,
    "AccountDeactivated": Status.DEACTIVATED,
}


def is_valid_handle(value: str) -> bool:
    """Whether ``value`` is a syntactically valid handle (a domain name)."""
    return len(value) <= _HANDLE_MAX and HANDLE_RE.fullmatch(value) is not None


def is_valid_actor(value: str) -> bool:
    """Whether ``value`` can name an account: a handle, a did:plc or a did:web."""
    if value.startswith("did:"):
        return PLC_DID_RE.fullmatch(value) is not None or WEB_DID_RE.fullmatch(value) is not None
    return is_valid_handle(value)


# gc=False: these hold only strings and numbers, so never a cycle; a page makes hundreds,
# and untracked they do not set off the garbage collector.
class _Profile(msgspec.Struct, gc=False):
    did: str
    handle: str


class _Subject(msgspec.Struct, gc=False):
    did: str
    handle: str
    follows_count: int | None = msgspec.field(default=None, name="followsCount")


class _FollowsPage(msgspec.Struct):
    """A list page as the AppView sends it (other fields are skipped unread)."""

    subject: _Subject
    follows: list[_Profile]
    cursor: str | None = None


_FOLLOWS_PAGE: Final = msgspec.json.Decoder(_FollowsPage)


def parse_follows_page(body: bytes, *, status: int, url: str = "", actor: str = "") -> Page:
    """Read one getFollows response for ``actor`` (handle or DID) into a Page.

    A page whose ``subject`` is neither the DID nor the handle asked for is an error (an
    answer about another account must not be saved as this one's list). Raises only
    ``ParseError``.
    """
    if status == 400:
        return _xrpc_error(body, url)
    if status != 200:
        detail = _error_message(body)
        msg = f"unexpected HTTP status {status} for getFollows"
        raise ParseError(f"{msg}: {detail}" if detail else msg, url=url)
    page = _page_in_bulk(body, actor)
    if page is not None:
        return page
    doc = load_object(body, url)
    subject = doc.get("subject")
    if not isinstance(subject, dict):
        raise NotPlatformAnswerError("response has no subject profile", url=url)
    follows = list_field(doc, "follows", "response", url, error=NotPlatformAnswerError)
    if follows is None:
        raise NotPlatformAnswerError("response has no follows list", url=url)
    _check_subject(subject, actor, url)
    names: list[str] = []
    ids: list[str] = []
    for index, item in enumerate(follows, 1):
        did, handle = _profile(item, f"follows item {index}", url)
        ids.append(did)
        names.append(handle)
    # An empty page with a cursor is allowed: the AppView filters taken-down and blocked
    # accounts out of a page after it is cut, so a page may shrink to nothing mid-list.
    cursor = optional_text(doc, "cursor", "response", url)
    count = optional_count(subject, "followsCount", "subject", url)
    return Page(names=tuple(names), ids=tuple(ids), next_cursor=cursor, following_count=count)


def _page_in_bulk(body: bytes, actor: str) -> Page | None:
    """The page as the AppView sends it, checked in bulk; None for anything else (an
    error, another subject, an invalid item), which the careful path reads and names."""
    doc = decode_typed(_FOLLOWS_PAGE, body)
    if doc is None or doc.cursor == "":
        return None
    subject = doc.subject
    count = subject.follows_count
    if (count is not None and count < 0) or not _is_valid_profile(subject.did, subject.handle):
        return None
    if actor and actor != subject.did and actor.casefold() != subject.handle.casefold():
        return None
    dids = [item.did for item in doc.follows]
    handles = [item.handle for item in doc.follows]
    if dids and (
        max(map(len, dids)) > _DID_MAX
        or max(map(len, handles)) > _HANDLE_MAX
        or not all_fullmatch(_DIDS, dids)
        or not all_fullmatch(_HANDLES, handles)
    ):
        return None
    return Page(
        names=tuple(handles), ids=tuple(dids), next_cursor=doc.cursor, following_count=count
    )


def _is_valid_profile(did: str, handle: str) -> bool:
    """The checks of ``_profile``, without a message."""
    return (
        len(did) <= _DID_MAX and _ANY_DID_RE.fullmatch(did) is not None and is_valid_handle(handle)
    )


def _profile(item: Any, where: str, url: str) -> tuple[str, str]:
    """The DID and handle of one profileView, both checked."""
    if not isinstance(item, dict):
        raise ParseError(f"{where} is not an object", url=url)
    did = text_field(item, "did", where, url)
    handle = text_field(item, "handle", where, url)
    if len(did) > _DID_MAX or _ANY_DID_RE.fullmatch(did) is None:
        raise ParseError(f"{where} has an invalid did {did[:60]!r}", url=url)
    if not is_valid_handle(handle):
        raise ParseError(f"{where} has an invalid handle {handle[:60]!r}", url=url)
    return did, handle


def _check_subject(subject: dict[str, Any], actor: str, url: str) -> None:
    did, handle = _profile(subject, "subject", url)
    if not actor or actor == did or actor.casefold() == handle.casefold():
        return
    msg = f"response is about {handle[:60]!r} ({did[:60]}), not {actor[:60]!r}"
    raise ParseError(msg, url=url)


def _xrpc_error(body: bytes, url: str) -> Page:
    """The account state told by an HTTP 400 XRPC error body, or ParseError."""
    doc = load_object(body, url)
    name = doc.get("error")
    message = clip(doc.get("message") or "")
    if not isinstance(name, str) or not name:
        raise ParseError(f"HTTP 400 without an XRPC error name: {message}", url=url)
    status = _STATUS_BY_ERROR.get(name)
    if status is not None:
        return Page(status=status, detail=f"{name}: {message}" if message else name)
    if name == "InvalidRequest" and message.casefold().rstrip(".") in _NOT_FOUND_MESSAGES:
        return Page(status=Status.NOT_FOUND, detail=f"{name}: {message}")
    msg = f"XRPC error {clip(name)}: {message or 'no message'}"
    raise ParseError(msg, url=url)


def _error_message(body: bytes) -> str:
    try:
        doc = load_json(body, "")
    except ParseError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [clip(doc[key]) for key in ("error", "message") if isinstance(doc.get(key), str)]
    return ": ".join(parts)
