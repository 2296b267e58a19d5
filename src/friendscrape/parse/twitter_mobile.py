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

Anything else raises ``ParseError``; a 200 that is not the site's page at all (an empty
body, or a page with none of its markers: a captive portal's, another site's, JSON)
raises ``NotPlatformAnswerError``. The parser never returns a list it may have read
only in part: an item without a valid screen name, a page cut before ``</html>``, or a
page with no users that still links to a next page are errors, not short lists.
Selection goes by tag, class and attribute name only, so attribute or class order,
extra classes, whitespace, entities and letter case of tags do not change the result.
Classes match as a browser's selectors match them: exactly in a page with a doctype, in
any ASCII letter case in one without (quirks mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from friendscrape.errors import LoginWallError, NotPlatformAnswerError, ParseError
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
# about as much as a third of building the tree; so a page takes one walk, which finds
# all pieces of all user items and every other block a page may have (what is inside
# those blocks is read with queries on their small subtrees). Every alternative of the
# list is tried on every node, and each costs about a walk of its own, so the list is
# short: all tables (user items and the profile header's two tables are told apart by
# class in Python, see _block_kinds) and the three kinds of div in one alternative.
# Matches come in document order, so each piece belongs to the item matched last before
# it; items nested in items are refused, which keeps that true (found from the item
# tables themselves, see _nested: no alternative of its own). Of the links in
# td.screenname only the first counts: ``a:first-of-type`` matches it (no earlier link
# can be its sibling) and leaves out the profile link that follows it.
_PARTS: Final = ", ".join(
    (
        "table",
        "table.user-item td.screenname a:first-of-type",
        "table.user-item td.screenname span.username",
        "table.user-item form[action]",
        "div:is(.protected, .w-button-more, .user-list)",
    )
)
# lexbor's numbers for the tags the walk meets: comparing ints, not names.
_TAG_IDS: Final = {
    node.tag: node.tag_id
    for node in LexborHTMLParser("<table><td><a></a><span></span><form></form><div>").css("*")
}
_A: Final = _TAG_IDS["a"]
_SPAN: Final = _TAG_IDS["span"]
_FORM: Final = _TAG_IDS["form"]
_TABLE: Final = _TAG_IDS["table"]
_DIV: Final = _TAG_IDS["div"]
# A user item of the site's list page as _PARTS finds it: its table, the link with the
# name, the shown name and the follow form (see _site_walk).
_SITE_ITEM: Final = [_TABLE, _A, _SPAN, _FORM]
# The classes that make a table or a div one of the blocks read, each with its selector
# (used only for class attributes with upper-case letters: see _block_kinds).
_TABLE_KINDS: Final = {
    "user-item": "table.user-item",
    "profile-stats": "table.profile-stats",
    "profile-details": "table.profile-details",
}
_DIV_KINDS: Final = {
    "protected": "div.protected",
    "w-button-more": "div.w-button-more",
    "user-list": "div.user-list",
}
_NO_KINDS: Final[tuple[str, ...]] = ()
_ITEM: Final = ("user-item",)
# The names of a whole page, one a line, checked with one match: the fast path of a page
# whose names, shown names and follow forms all agree exactly (any other page takes the
# per-item path, which tells which item is wrong and accepts whitespace and letter case).
_NAMES_RE: Final = re.compile(r"[A-Za-z0-9_]{1,15}(?:\n[A-Za-z0-9_]{1,15})*+")
_UNSET: Final = object()
# A query that is only ``cursor=`` and a value with nothing to unquote.
_PLAIN_CURSOR_RE: Final = re.compile(r"cursor=([A-Za-z0-9_.~-]+)")
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
one of 100 users about 3,950. Counting is one C pass over the body (about 7 us on a
17 KB page whose parse takes some 220 us), so a body of at most ``3 * MAX_TAGS`` bytes is
not counted: a tag takes three bytes at least (``<b>``), and such a body cannot hold
more tags than the bound."""
_UNCOUNTED_BYTES: Final = 3 * MAX_TAGS


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
    tags = body.count(b"<") if len(body) > _UNCOUNTED_BYTES else 0  # see MAX_TAGS
    if status == 404:
        detail = _not_found_detail(body) if tags <= MAX_TAGS else "HTTP 404"
        return Page(status=Status.NOT_FOUND, detail=detail)
    if status != 200:
        msg = f"unexpected HTTP status {status} for a following page"
        raise ParseError(msg, url=url)
    if not body or body.isspace():  # not strip(): that would copy the whole body
        msg = "empty body where a following page was expected"
        raise NotPlatformAnswerError(msg, url=url)
    if tags > MAX_TAGS:
        msg = (
            f"page has {tags:,} tags, over the bound of {MAX_TAGS:,} (a following page "
            "has about 1,000): refused unparsed, as its nesting could stall the collector"
        )
        raise ParseError(msg, url=url)
    tree = _parse_html(body, url)
    page = _walk(tree)
    _check_owner(page.details, owner, url)

    body_node = tree.body
    if body_node is not None and _has_class(body_node, "account-suspended-page"):
        detail = _text(tree.css_first("div.system") or body_node) or "account suspended"
        return Page(status=Status.SUSPENDED, detail=detail)
    for marker in page.protected:
        if not _inside_user_item(marker):
            return Page(status=Status.PROTECTED, detail=_text(marker) or "account protected")

    return _parse_list_page(tree, page, body, url, owner)


@dataclass(slots=True)
class _Walk:
    """What the page's one tree walk found, in document order.

    Per user item (``table.user-item``): the ``name`` of its first link in
    ``td.screenname`` (None without one), its first ``span.username`` and the actions
    of its forms. Other blocks: the lists below.
    """

    names: list[str | None] = field(default_factory=list)
    shown: list[LexborNode | None] = field(default_factory=list)
    actions: list[list[str]] = field(default_factory=list)
    protected: list[LexborNode] = field(default_factory=list)
    more: list[LexborNode] = field(default_factory=list)
    stats: list[LexborNode] = field(default_factory=list)
    details: list[LexborNode] = field(default_factory=list)
    user_list: bool = False
    nested: bool = False


def _walk(tree: LexborHTMLParser) -> _Walk:
    nodes = tree.css(_PARTS)
    found = _site_walk(nodes)
    return found if found is not None else _nodes_walk(nodes)


def _site_walk(nodes: list[LexborNode]) -> _Walk | None:
    """What _nodes_walk finds in ``nodes``, read without looking at each node in turn,
    when they are laid out as the site lays out a list page: ``div.user-list``, then per
    item its table, link, shown name and form, then at most the next-page block, each
    div and table with that one class. None for any other page."""
    tags = [node.tag_id for node in nodes]
    count, extra = divmod(len(tags) - 1, 4)
    if extra > 1 or tags[0] != _DIV or tags[1 : 1 + 4 * count] != _SITE_ITEM * count:
        return None
    more = nodes[-1:] if extra else []
    if (extra and (tags[-1] != _DIV or more[0].attributes.get("class") != "w-button-more")) or (
        nodes[0].attributes.get("class") != "user-list"
    ):
        return None
    items = nodes[1 : 1 + 4 * count : 4]
    if any(node.attributes.get("class") != "user-item" for node in items):
        return None
    shown: list[LexborNode | None] = [*nodes[3::4]]
    return _Walk(
        names=[node.attributes.get("name") for node in nodes[2::4]],
        shown=shown,
        actions=[[node.attributes.get("action") or ""] for node in nodes[4::4]],
        more=more,
        user_list=True,
        nested=_nested(items),
    )


def _nodes_walk(nodes: list[LexborNode]) -> _Walk:
    """The pieces of the page's user items and blocks, node by node (see _PARTS)."""
    found = _Walk()
    names: list[object] = []  # _UNSET until the item's first link is met
    shown, actions = found.shown, found.actions
    items: list[LexborNode] = []
    for node in nodes:
        tag = node.tag_id
        if tag == _A:
            if names and names[-1] is _UNSET:
                names[-1] = node.attributes.get("name")
        elif tag == _SPAN:
            if shown and shown[-1] is None:
                shown[-1] = node
        elif tag == _FORM:
            if actions:
                actions[-1].append(node.attributes.get("action") or "")
        elif tag == _TABLE:
            value = node.attributes.get("class")
            # Most tables are user items with just that class: no splitting.
            kinds = _ITEM if value == "user-item" else _block_kinds(node, value, _TABLE_KINDS)
            if "user-item" in kinds:
                items.append(node)
                names.append(_UNSET)
                shown.append(None)
                actions.append([])
            if kinds is not _ITEM:
                if "profile-stats" in kinds:
                    found.stats.append(node)
                if "profile-details" in kinds:
                    found.details.append(node)
        elif tag == _DIV:
            kinds = _block_kinds(node, node.attributes.get("class"), _DIV_KINDS)
            if "protected" in kinds:
                found.protected.append(node)
            if "w-button-more" in kinds:
                found.more.append(node)
            if "user-list" in kinds:
                found.user_list = True
    found.names = [name if isinstance(name, str) else None for name in names]
    found.nested = _nested(items)  # refused where the items are read, as before any cursor
    return found


def _nested(items: list[LexborNode]) -> bool:
    """Whether one of the user items sits inside another. Items that share one parent
    (the site's list) cannot: one inside another would have its parent inside it."""
    if len(items) < 2:
        return False
    parent = items[0].parent
    first = parent.mem_id if parent is not None else None
    for item in items:
        parent = item.parent
        if parent is None or parent.mem_id != first:
            return any(_inside_user_item(item) for item in items)
    return False


def _block_kinds(
    node: LexborNode, value: str | None, kinds: dict[str, str]
) -> tuple[str, ...] | list[str]:
    """Which of ``kinds`` (class name -> selector) the node's class attribute ``value``
    makes it, as the selector engine would say: a value without upper-case letters is
    read here; any other asks the engine, because a document in quirks mode (no
    doctype) matches classes without regard to ASCII case."""
    if not value:
        return _NO_KINDS
    if value.lower() == value:
        classes = value.split()
        return [kind for kind in kinds if kind in classes]
    return [kind for kind, selector in kinds.items() if node.css_matches(selector)]


def _parse_list_page(
    tree: LexborHTMLParser, page: _Walk, body: bytes, url: str, owner: str | None
) -> Page:
    """The names, next cursor and following count of a list page, or ParseError."""
    if page.nested:
        raise ParseError("user item inside a user item: unexpected page structure", url=url)
    cursor = _cursor_of(url)
    next_cursor = _next_cursor(page.more, cursor, url, owner)
    if not page.names:
        if not page.user_list and next_cursor is None:
            if tree.css_first("input[type=password]") is not None:
                # A login form where the list should be: the site wants a session for
                # every list (the circuit breaker's "login wall"), not one odd account.
                msg = f"not a following page but a login form (a login wall){_title(tree)}"
                raise LoginWallError(msg, url=url)
            msg = (
                f"not a following page (no user list, protected or suspended marker){_title(tree)}"
            )
            if page.stats or page.details:
                raise ParseError(msg, url=url)  # the site's profile header: its page
            # None of the site's markers: a captive portal's or another site's page.
            raise NotPlatformAnswerError(msg, url=url)
        if next_cursor is not None:
            msg = "list page has no users but links to a next page"
            raise ParseError(msg, url=url)
        if cursor is not None:
            # Only the first page may be empty (the user follows nobody); an empty page
            # after a cursor is more likely a list cut short than a list that ends.
            msg = "page after a cursor has no users and no next link"
            raise ParseError(msg, url=url)
    tail = body[-_END_WINDOW:].rstrip()
    # Most pages end with the tag itself: no search needed.
    if not tail.endswith(b"</html>") and _COMPLETE_END_RE.search(tail) is None:
        raise ParseError("page ends before </html>: the response looks truncated", url=url)
    return Page(
        names=_screen_names(page, url),
        next_cursor=next_cursor,
        following_count=_following_count(page.stats, url),
    )


def _screen_names(page: _Walk, url: str) -> tuple[str, ...]:
    """Every item's screen name, cross-checked with its shown name and follow form.

    A page as the site sends it is checked in bulk: one match over all names, one
    comparison of all shown names and one of all follow forms. Any other page is
    checked item by item, which accepts what the bulk check does not (spacing, letter
    case, forms with a query) and names the first item that is wrong.
    """
    names = page.names
    if None not in names:
        joined = "\n".join(names)  # type: ignore[arg-type]  # no None, checked above
        if (
            _NAMES_RE.fullmatch(joined) is not None
            and joined.count("\n") == len(names) - 1
            and None not in page.shown
            and "\n".join([node.text_lexbor() for node in page.shown])  # type: ignore[union-attr]
            == "@" + joined.replace("\n", "\n@")
            and all(len(actions) == 1 for actions in page.actions)
            and "\n".join([actions[0] for actions in page.actions])
            == _GUEST_FOLLOW_PATH + joined.replace("\n", "\n" + _GUEST_FOLLOW_PATH)
        ):
            return tuple(names)  # type: ignore[arg-type]  # no None, checked above
    return tuple(
        [
            _screen_name(raw, shown, actions, index, url)
            for index, (raw, shown, actions) in enumerate(
                zip(names, page.shown, page.actions, strict=True), 1
            )
        ]
    )


def _screen_name(
    raw: str | None, shown_node: LexborNode | None, actions: list[str], index: int, url: str
) -> str:
    """The screen name of one user item, cross-checked, or ParseError."""
    if raw is None:
        msg = f"user item {index} has no screen name (no <a name> in td.screenname)"
        raise ParseError(msg, url=url)
    name = raw.strip()
    if not is_valid_screen_name(name):
        msg = f"user item {index} has an invalid screen name {name[:40]!r}"
        raise ParseError(msg, url=url)
    if shown_node is not None:
        shown = "".join(shown_node.text().split()).removeprefix("@")
        if shown and shown != name and shown.casefold() != name.casefold():
            msg = f"user item {index}: screen name {name!r} but shown as {shown[:40]!r}"
            raise ParseError(msg, url=url)
    for action in actions:
        path = action.partition("?")[0].partition("#")[0]
        if _GUEST_FOLLOW_PATH in path:
            target = path.rsplit("/", 1)[-1]
            if "%" in target:
                target = unquote(target)
            if target != name and target.casefold() != name.casefold():
                msg = f"user item {index}: screen name {name!r} but follow form for {target[:40]!r}"
                raise ParseError(msg, url=url)
    return name


def _next_cursor(
    blocks: list[LexborNode], current: str | None, url: str, owner: str | None
) -> str | None:
    """The cursor of the "Show more people" link, None on the last page (``current`` is
    the cursor of this page's URL); ParseError when the link is for another page than
    ``owner``'s following list (when given)."""
    if not blocks:
        return None
    more = blocks[0]
    # The site's block starts with its link, which is then the first ``a[href]`` in it.
    first = more.child
    href = first.attributes.get("href") if first is not None and first.tag == "a" else None
    if not href:
        href = next((a.attributes.get("href") for a in more.css("a[href]")), None)
    if not href:
        raise ParseError("next-page block has no link", url=url)
    if owner is not None and not href.startswith(f"/{owner}/following?"):
        _check_next_link(href, owner, url)  # not the site's own form: read its path
    cursor = _cursor_of(href)
    if cursor is None:
        msg = f"next-page link has no cursor: {href[:100]!r}"
        raise ParseError(msg, url=url)
    if cursor == current:
        raise ParseError(f"next-page link points back to cursor {cursor[:60]!r}", url=url)
    return cursor


def _check_next_link(href: str, owner: str, url: str) -> None:
    """ParseError when a next link's path is not ``owner``'s following page (a link of a
    query alone stays on the page): a cursor of another account's list is not walked."""
    try:
        path = urlsplit(href).path
    except ValueError:
        msg = f"next page link is not a valid URL ({href[:100]!r})"
        raise ParseError(msg, url=url) from None
    path = unquote(path).rstrip("/").casefold()
    if path in ("", "following") or path.endswith(f"/{owner}/following".casefold()):
        return
    msg = f"next page link names another account or endpoint ({path[:100]!r}); not followed"
    raise ParseError(msg, url=url)


def _following_count(tables: list[LexborNode], url: str) -> int | None:
    """The profile's following count from ``table.profile-stats``, if the page has it."""
    for link in (link for table in tables for link in table.css("td a[href]")):
        href = link.attributes.get("href") or ""
        if "/following" not in href:  # the other counts' links: no URL to split
            continue
        path = urlsplit(href).path.rstrip("/")
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
    """The parsed tree; lexbor accepts any bytes, but keep its own errors typed.

    Parsed as a browser that runs scripts parses it: the content of a ``<noscript>`` is
    one text node, so a friend item, a count or a next link inside one is not read (with
    scripting off it would be markup, and a ``<noscript>`` in ``<head>`` could even push
    its content into the body). A ``<template>``'s content is outside the tree either way.
    """
    try:
        return LexborHTMLParser(body, scripting=True)
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
    plain = _PLAIN_CURSOR_RE.fullmatch(query)
    if plain is not None:  # the site's own links: nothing to unquote
        return plain.group(1)
    values = parse_qs(query).get("cursor")
    return values[0] if values and values[0] else None


def _has_class(node: LexborNode, name: str) -> bool:
    """Whether ``name`` is one of the node's classes (order and spacing do not matter;
    letter case as the selector engine has it: see _block_kinds)."""
    return bool(_block_kinds(node, node.attributes.get("class"), {name: f".{name}"}))


def _inside_user_item(node: LexborNode) -> bool:
    """Whether ``node`` sits inside a ``table.user-item`` (a followed account's row)."""
    parent = node.parent
    while parent is not None:
        if parent.tag == "table" and _has_class(parent, "user-item"):
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
