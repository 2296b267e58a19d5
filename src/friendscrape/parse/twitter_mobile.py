"""Parser of the legacy no-JavaScript mobile site's "following" pages (bytes -> Page).

One response is one of:

- a list page: each followed account is a ``table.user-item`` whose screen name is the
  ``name`` attribute of the first ``<a>`` in ``td.screenname`` (cross-checked against the
  ``span.username`` text and the guest follow form's action when they are there); the
  next page's cursor is the ``cursor`` query parameter of ``div.w-button-more a``; the
  first page may carry the following count in ``table.profile-stats``;
- a protected account (``div.protected``), a suspended one
  (``body.account-suspended-page``) or an unknown screen name: HTTP 404 with the site's
  own "Sorry, that page doesn't exist" page (``body.not-found-page``). Any other 404 (a
  proxy's page, an empty body: a wrong base URL or path) is a ParseError, not a status.

Anything else raises ``ParseError``. The parser never returns a list it may have read
only in part: an item without a valid screen name, a page cut before ``</html>``, or a
page with no users that still links to a next page are errors, not short lists.
Selection goes by tag, class and attribute name only, so attribute or class order,
extra classes, whitespace, entities and letter case of tags do not change the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from friendscrape.errors import LoginWallError, ParseError
from friendscrape.models import Page, Status

SCREEN_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,15}")
"""A screen name: 1 to 15 ASCII letters, digits or underscores (match with fullmatch)."""

# A complete document ends with its closing tag (optionally followed by comments); a
# response cut between two user items would otherwise parse as a shorter last page.
_COMPLETE_END_RE: Final = re.compile(
    rb"</(?:html|body)\s*>(?:\s*<!--.*?-->)*\s*\Z", re.IGNORECASE | re.DOTALL
)
# Thousands separators seen in the site's locales: comma, dot, spaces, apostrophe.
_COUNT_RE: Final = re.compile(r"\d{1,3}(?:[,.\u00a0\u202f' ]\d{3})+|\d+")
_NON_DIGIT_RE: Final = re.compile(r"\D")
_GUEST_FOLLOW_PATH: Final = "/i/guest/follow/"
# Each css() call walks the whole tree, and on a collector's cold caches a walk costs
# about as much as a third of building the tree; so a page takes two walks, not one per
# question. The first finds all pieces of all user items. Matches come in document order,
# so each piece belongs to the item matched last before it; items nested in items are
# refused, which keeps that true: the last selector matches only there (no other selector
# yields a td), and an inner item without td.screenname fails for want of a name.
_ITEM_PARTS: Final = ", ".join(
    (
        "table.user-item",
        "table.user-item td.screenname a",
        "table.user-item td.screenname span.username",
        "table.user-item form[action]",
        "table.user-item table.user-item td.screenname",
    )
)
# The second walk finds every other block a page may have; what is inside them is read
# with queries on those small subtrees.
_BLOCKS: Final = (
    "div.protected, div.w-button-more, div.user-list, table.profile-stats, table.profile-details"
)
_DETAIL_MAX: Final = 200
# How much of the body's end is searched for its closing tag (trailing whitespace and
# comments included); slicing first keeps a whole-body copy off every page.
_END_WINDOW: Final = 1024
# The site's 404 page: its body class, or its message (the apostrophe as sent or as an
# entity); searched in the body's first bytes only.
_NOT_FOUND_MARKERS: Final = (
    b"not-found-page",
    b"that page doesn't exist",
    b"that page doesn&#39;t exist",
    b"that page doesn&#x27;t exist",
    b"that page doesn\xe2\x80\x99t exist",
)
_NOT_FOUND_WINDOW: Final = 65536

MAX_TAGS: Final = 6_000
"""Most ``<`` a page may hold before it is refused unparsed.

lexbor builds a tree in time quadratic in its depth (150,000 nested ``<div>``, a 750 KB
page, took 255 s, all of it holding the event loop), and a page cannot nest deeper than
it has tags. At this bound the slowest page we could build (nested divs, lists, misnested
formatting tags) parses in under 90 ms; a following page of 20 users has about 830 ``<``,
one of 100 users about 3,950. Counting is one C pass over the body: 6 us on a 17 KB page
whose parse takes 540 us."""


def is_valid_screen_name(name: str) -> bool:
    """Whether ``name`` can be a screen name (1-15 of ``A-Za-z0-9_``)."""
    return SCREEN_NAME_RE.fullmatch(name) is not None


def parse_following_page(
    body: bytes, *, status: int, url: str = "", owner: str | None = None
) -> Page:
    """Read one response of ``/{screen_name}/following[?cursor=C]`` into a Page.

    ``url`` is the response's URL: it is kept in errors, and its ``cursor`` parameter
    tells a later page from the first one. ``owner``, when given, is the screen name
    whose list was asked for; a page whose profile header names someone else is an
    error (a redirect to another account must not be saved as this one's list).
    Raises only ``ParseError``.
    """
    if status == 404 and not is_not_found_page(body):
        msg = (
            "HTTP 404 without the site's \"Sorry, that page doesn't exist\" page "
            "(a wrong base URL or path, or a proxy's error page)"
        )
        raise ParseError(msg, url=url)
    tags = body.count(b"<")
    if status == 404:
        detail = _not_found_detail(body) if tags <= MAX_TAGS else "HTTP 404"
        return Page(status=Status.NOT_FOUND, detail=detail)
    if status != 200:
        msg = f"unexpected HTTP status {status} for a following page"
        raise ParseError(msg, url=url)
    if not body.strip():
        raise ParseError("empty body where a following page was expected", url=url)
    if tags > MAX_TAGS:
        msg = (
            f"page has {tags:,} tags, over the bound of {MAX_TAGS:,} (a following page "
            "has about 1,000): refused unparsed, as its nesting could stall the collector"
        )
        raise ParseError(msg, url=url)
    tree = _parse_html(body, url)
    blocks = _find_blocks(tree)
    _check_owner(blocks.details, owner, url)

    body_node = tree.body
    if body_node is not None and "account-suspended-page" in _classes(body_node):
        detail = _text(tree.css_first("div.system") or body_node) or "account suspended"
        return Page(status=Status.SUSPENDED, detail=detail)
    for marker in blocks.protected:
        if not _inside_user_item(marker):
            return Page(status=Status.PROTECTED, detail=_text(marker) or "account protected")

    return _parse_list_page(tree, blocks, body, url)


@dataclass(slots=True)
class _Blocks:
    """The page's blocks other than user items, in document order, from one tree walk."""

    protected: list[LexborNode] = field(default_factory=list)
    more: list[LexborNode] = field(default_factory=list)
    stats: list[LexborNode] = field(default_factory=list)
    details: list[LexborNode] = field(default_factory=list)
    user_list: bool = False


def _find_blocks(tree: LexborHTMLParser) -> _Blocks:
    found = _Blocks()
    for node in tree.css(_BLOCKS):
        classes = _classes(node)
        if node.tag == "div":
            if "protected" in classes:
                found.protected.append(node)
            if "w-button-more" in classes:
                found.more.append(node)
            if "user-list" in classes:
                found.user_list = True
        else:
            if "profile-stats" in classes:
                found.stats.append(node)
            if "profile-details" in classes:
                found.details.append(node)
    return found


def _parse_list_page(tree: LexborHTMLParser, blocks: _Blocks, body: bytes, url: str) -> Page:
    """The names, next cursor and following count of a list page, or ParseError."""
    items = _items(tree, url)
    next_cursor = _next_cursor(blocks.more, url)
    if not items:
        if not blocks.user_list and next_cursor is None:
            if tree.css_first("input[type=password]") is not None:
                # A login form where the list should be: the site wants a session for
                # every list (the circuit breaker's "login wall"), not one odd account.
                msg = f"not a following page but a login form (a login wall){_title(tree)}"
                raise LoginWallError(msg, url=url)
            msg = (
                f"not a following page (no user list, protected or suspended marker){_title(tree)}"
            )
            raise ParseError(msg, url=url)
        if next_cursor is not None:
            msg = "list page has no users but links to a next page"
            raise ParseError(msg, url=url)
        if _cursor_of(url) is not None:
            # Only the first page may be empty (the user follows nobody); an empty page
            # after a cursor is more likely a list cut short than a list that ends.
            msg = "page after a cursor has no users and no next link"
            raise ParseError(msg, url=url)
    if _COMPLETE_END_RE.search(body[-_END_WINDOW:].rstrip()) is None:
        raise ParseError("page ends before </html>: the response looks truncated", url=url)
    names = tuple([_screen_name(item, index, url) for index, item in enumerate(items, 1)])
    return Page(
        names=names, next_cursor=next_cursor, following_count=_following_count(blocks.stats, url)
    )


@dataclass(slots=True)
class _Item:
    """The pieces of one ``table.user-item`` that name the followed account."""

    anchor: LexborNode | None = None
    shown: LexborNode | None = None
    follow_actions: list[str] = field(default_factory=list)


def _items(tree: LexborHTMLParser, url: str) -> list[_Item]:
    """Every user item with its name link, shown name and form actions, in page order."""
    items: list[_Item] = []
    for node in tree.css(_ITEM_PARTS):
        tag = node.tag
        if tag == "td":
            raise ParseError("user item inside a user item: unexpected page structure", url=url)
        if tag == "table":
            items.append(_Item())
        elif not items:
            continue  # cannot happen: each part lies inside an item matched before it
        elif tag == "a":
            if items[-1].anchor is None:
                items[-1].anchor = node
        elif tag == "span":
            if items[-1].shown is None:
                items[-1].shown = node
        elif tag == "form":
            items[-1].follow_actions.append(node.attributes.get("action") or "")
    return items


def _screen_name(item: _Item, index: int, url: str) -> str:
    """The screen name of one user item, cross-checked, or ParseError."""
    raw = item.anchor.attributes.get("name") if item.anchor is not None else None
    if raw is None:
        msg = f"user item {index} has no screen name (no <a name> in td.screenname)"
        raise ParseError(msg, url=url)
    name = raw.strip()
    if not is_valid_screen_name(name):
        msg = f"user item {index} has an invalid screen name {name[:40]!r}"
        raise ParseError(msg, url=url)
    if item.shown is not None:
        shown = "".join(item.shown.text().split()).removeprefix("@")
        if shown and shown != name and shown.casefold() != name.casefold():
            msg = f"user item {index}: screen name {name!r} but shown as {shown[:40]!r}"
            raise ParseError(msg, url=url)
    for action in item.follow_actions:
        path = action.partition("?")[0].partition("#")[0]
        if _GUEST_FOLLOW_PATH in path:
            target = path.rsplit("/", 1)[-1]
            if "%" in target:
                target = unquote(target)
            if target != name and target.casefold() != name.casefold():
                msg = f"user item {index}: screen name {name!r} but follow form for {target[:40]!r}"
                raise ParseError(msg, url=url)
    return name


def _next_cursor(blocks: list[LexborNode], url: str) -> str | None:
    """The cursor of the "Show more people" link, None on the last page."""
    if not blocks:
        return None
    more = blocks[0]
    href = next((a.attributes.get("href") for a in more.css("a[href]")), None)
    if not href:
        raise ParseError("next-page block has no link", url=url)
    cursor = _cursor_of(href)
    if cursor is None:
        msg = f"next-page link has no cursor: {href[:100]!r}"
        raise ParseError(msg, url=url)
    if cursor == _cursor_of(url):
        raise ParseError(f"next-page link points back to cursor {cursor[:60]!r}", url=url)
    return cursor


def _following_count(tables: list[LexborNode], url: str) -> int | None:
    """The profile's following count from ``table.profile-stats``, if the page has it."""
    for link in (link for table in tables for link in table.css("td a[href]")):
        path = urlsplit(link.attributes.get("href") or "").path.rstrip("/")
        if not path.endswith("/following"):
            continue
        cell = link.parent
        while cell is not None and cell.tag != "td":
            cell = cell.parent
        statnum = cell.css_first("div.statnum") if cell is not None else None
        text = statnum.text().strip() if statnum is not None else ""
        if _COUNT_RE.fullmatch(text) is None:
            msg = f"following count is not a number: {text[:40]!r}"
            raise ParseError(msg, url=url)
        return int(_NON_DIGIT_RE.sub("", text))
    return None


def _check_owner(tables: list[LexborNode], owner: str | None, url: str) -> None:
    """ParseError when the profile header names another account than ``owner``."""
    if owner is None:
        return
    header = next(
        (found for table in tables if (found := table.css_first(".screen-name")) is not None),
        None,
    )
    if header is None:
        return
    shown = "".join(header.text().split()).removeprefix("@")
    if shown and shown.casefold() != owner.casefold():
        msg = f"page is for @{shown[:40]}, not @{owner}"
        raise ParseError(msg, url=url)


def _parse_html(body: bytes, url: str) -> LexborHTMLParser:
    """The parsed tree; lexbor accepts any bytes, but keep its own errors typed."""
    try:
        return LexborHTMLParser(body)
    except (SelectolaxError, RuntimeError, ValueError) as exc:
        raise ParseError(f"body is not readable HTML: {exc}", url=url) from exc


def _not_found_detail(body: bytes) -> str:
    """What a 404 page says, for the user's record."""
    message = ""
    if body.strip():
        try:
            node = LexborHTMLParser(body).css_first("div.system")
        except (SelectolaxError, RuntimeError, ValueError):
            node = None
        message = _text(node) if node is not None else ""
    return f"HTTP 404: {message}" if message else "HTTP 404"


def is_not_found_page(body: bytes) -> bool:
    """Whether a 404 body is the site's own answer for an unknown screen name.

    A byte search, not a parse: that page is a few hundred bytes, and a huge or deeply
    nested 404 body must be refused as cheaply as it is told apart.
    """
    head = body[:_NOT_FOUND_WINDOW].lower()
    return any(marker in head for marker in _NOT_FOUND_MARKERS)


def _cursor_of(url: str) -> str | None:
    """The non-empty ``cursor`` query parameter of ``url``, or None."""
    query = url.partition("#")[0].partition("?")[2]
    if "cursor=" not in query:  # most first pages: no query to parse
        return None
    values = parse_qs(query).get("cursor")
    return values[0] if values and values[0] else None


def _classes(node: LexborNode) -> set[str]:
    """The node's class names (order and spacing of the attribute do not matter)."""
    return set((node.attributes.get("class") or "").split())


def _inside_user_item(node: LexborNode) -> bool:
    """Whether ``node`` sits inside a ``table.user-item`` (a followed account's row)."""
    parent = node.parent
    while parent is not None:
        if parent.tag == "table" and "user-item" in _classes(parent):
            return True
        parent = parent.parent
    return False


def _text(node: LexborNode) -> str:
    """The node's text with whitespace collapsed, capped for storage."""
    return " ".join(node.text(separator=" ").split())[:_DETAIL_MAX]


def _title(tree: LexborHTMLParser) -> str:
    """``; title: '...'`` for error messages, or nothing when the page has no title."""
    title = tree.css_first("title")
    text = _text(title) if title is not None else ""
    return f"; title: {text[:80]!r}" if text else ""
