"""Tests of the twitter-mobile following-page parser: samples, look-alikes, hostile pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.errors import ParseError
from friendscrape.models import Page, Status
from friendscrape.parse.twitter_mobile import (
    SCREEN_NAME_RE,
    is_valid_screen_name,
    parse_following_page,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twitter-mobile"
FIRST_URL = "http://127.0.0.1:8080/ada_example/following"
LATER_URL = f"{FIRST_URL}?cursor=1603141412870551205"
PAGE1_NAMES = ("grace_h", "Linus_T")
PAGE1_CURSOR = "1603141412870551205"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def user_item(name: str, *, bio: str = "") -> str:
    """One ``table.user-item`` as the site renders it."""
    return (
        '<table class="user-item"><tr>'
        f'<td class="avatar" rowspan="2"><a href="/{name}"><img alt="x" src="/a.png"></a></td>'
        f'<td class="info fifty screenname"><a name="{name}"></a><a href="/{name}">'
        f'<strong class="fullname">Name of {name}</strong>'
        f'<span class="username"><span>@</span>{name}</span></a></td>'
        f'<td class="info fifty"><form action="/i/guest/follow/{name}" method="post">'
        '<input name="authenticity_token" type="hidden" value="0a1b"></form></td>'
        f'</tr><tr><td class="info" colspan="2"><div class="bio">{bio}</div></td></tr></table>'
    )


def list_page(items: str, *, cursor: str | None = None, count: str | None = None) -> bytes:
    """A whole list page around ``items``: optional stats, optional next link."""
    stats = (
        '<table class="profile-stats"><tr><td class="stat">'
        f'<a href="/ada_example/following"><div class="statnum">{count}</div></a></td></tr></table>'
        if count is not None
        else ""
    )
    link = f'<a href="/ada_example/following?cursor={cursor}">more</a>'
    more = f'<div class="w-button-more">{link}</div>' if cursor is not None else ""
    return (
        "<!DOCTYPE html><html><head><title>People followed</title></head>"
        f'<body class="users-following-page">{stats}<div class="user-list">{items}</div>'
        f"{more}</body></html>\n"
    ).encode()


# --- the five sample pages ---------------------------------------------------------


def test_first_page_gives_names_in_order_cursor_and_count() -> None:
    page = parse_following_page(fixture("following_page1.html"), status=200, url=FIRST_URL)
    assert page == Page(
        names=PAGE1_NAMES, next_cursor=PAGE1_CURSOR, following_count=3, status=Status.OK
    )


def test_last_page_has_no_cursor_and_no_count() -> None:
    page = parse_following_page(fixture("following_page2_last.html"), status=200, url=LATER_URL)
    assert page == Page(names=("_margaret",), next_cursor=None, following_count=None)


def test_protected_page() -> None:
    page = parse_following_page(fixture("protected.html"), status=200, url=FIRST_URL)
    assert page.status is Status.PROTECTED
    assert page.names == ()
    assert page.detail is not None
    assert "protected" in page.detail


def test_suspended_page() -> None:
    page = parse_following_page(fixture("suspended.html"), status=200, url=FIRST_URL)
    assert page.status is Status.SUSPENDED
    assert page.names == ()
    assert page.detail is not None
    assert "suspended" in page.detail


def test_not_found_page_keeps_its_message() -> None:
    page = parse_following_page(fixture("not_found.html"), status=404, url=FIRST_URL)
    assert page.status is Status.NOT_FOUND
    assert page.detail == "HTTP 404: Sorry, that page doesn't exist"


NGINX_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    "body", [b"", b"\x00\xff garbage", b"<html><body>nope", b"404: Not Found", NGINX_404]
)
def test_a_404_that_is_not_the_sites_page_is_a_parse_error_not_not_found(body: bytes) -> None:
    # A wrong base URL or path gets a web server's 404: the account may well exist, so
    # it must not be recorded not_found (which --retry-failed never retries).
    with pytest.raises(ParseError, match="HTTP 404 without the site's") as caught:
        parse_following_page(body, status=404, url=FIRST_URL)
    assert caught.value.url == FIRST_URL


@pytest.mark.parametrize(
    "body",
    [
        b'<html><body class="not-found-page"><div class="system">Gone</div></body></html>',
        b"<html><body><div class='system'>Sorry, that page doesn&#39;t exist</div></body></html>",
    ],
)
def test_the_sites_404_page_is_recognised_by_its_class_or_its_message(body: bytes) -> None:
    page = parse_following_page(body, status=404, url=FIRST_URL)
    assert page.status is Status.NOT_FOUND
    assert page.names == ()


def test_first_page_with_no_users_is_an_empty_list() -> None:
    page = parse_following_page(fixture("empty_list.html"), status=200, url=FIRST_URL)
    assert page == Page(names=(), next_cursor=None, following_count=0, status=Status.OK)


def test_twenty_users_and_a_bio_full_of_mentions() -> None:
    names = [f"user_{i:02d}" for i in range(20)]
    items = "".join(user_item(n, bio="hi @not_me and @also_not_me") for n in names)
    page = parse_following_page(
        list_page(items, cursor="-42", count="12,345"), status=200, url=FIRST_URL
    )
    assert page.names == tuple(names)
    assert page.next_cursor == "-42"
    assert page.following_count == 12345


@pytest.mark.parametrize(
    ("shown", "expected"),
    [("0", 0), ("999", 999), ("1,024", 1024), ("1.234.567", 1234567), ("12\u00a0345", 12345)],
)
def test_following_count_with_thousands_separators(shown: str, expected: int) -> None:
    body = list_page(user_item("grace_h"), count=shown)
    assert parse_following_page(body, status=200, url=FIRST_URL).following_count == expected


# --- look-alikes: incidental markup must not change the result ----------------------


@pytest.mark.parametrize(
    "name",
    [
        "lookalike_attr_class_order.html",
        "lookalike_whitespace.html",
        "lookalike_entities_mentions.html",
        "lookalike_extra_classes.html",
        "lookalike_uppercase.html",
    ],
)
def test_look_alikes_give_the_same_page(name: str) -> None:
    page = parse_following_page(fixture(name), status=200, url=FIRST_URL)
    assert page == Page(names=PAGE1_NAMES, next_cursor=PAGE1_CURSOR, following_count=3)


def test_crlf_line_endings_give_the_same_page() -> None:
    body = fixture("following_page1.html").replace(b"\n", b"\r\n")
    page = parse_following_page(body, status=200, url=FIRST_URL)
    assert page.names == PAGE1_NAMES
    assert page.next_cursor == PAGE1_CURSOR


def test_trailing_comment_after_html_is_not_truncation() -> None:
    body = fixture("following_page2_last.html") + b"<!-- served in 12ms -->\n"
    page = parse_following_page(body, status=200, url=LATER_URL)
    assert page.names == ("_margaret",)


# --- hostile pages: each is a ParseError, never a short list ------------------------


def test_every_truncation_of_a_list_page_is_an_error() -> None:
    body = fixture("following_page1.html")
    end = body.index(b"</body>")
    for cut in range(end):
        with pytest.raises(ParseError):
            parse_following_page(body[:cut], status=200, url=FIRST_URL)


def test_list_cut_between_users_names_the_problem() -> None:
    body = fixture("following_page1.html")
    cut = body.index(b"</table>", body.index(b'class="user-item"')) + len(b"</table>")
    with pytest.raises(ParseError, match="truncated") as caught:
        parse_following_page(body[:cut], status=200, url=FIRST_URL)
    assert caught.value.url == FIRST_URL


def test_every_truncation_of_a_last_page_is_an_error() -> None:
    body = fixture("following_page2_last.html")
    for cut in range(body.index(b"</body>")):
        with pytest.raises(ParseError):
            parse_following_page(body[:cut], status=200, url=LATER_URL)


def test_login_wall() -> None:
    with pytest.raises(ParseError, match=r"not a following page.*Login on Twitter"):
        parse_following_page(fixture("login_wall.html"), status=200, url=FIRST_URL)


@pytest.mark.parametrize("body", [b"", b"   \r\n\t "])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty body"):
        parse_following_page(body, status=200, url=FIRST_URL)


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)) * 8,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64,
        b'{"users": [{"screen_name": "grace_h"}], "next_cursor": "1"}',
        "<html><body>\u2603 Ω</body></html>".encode("utf-16"),
    ],
    ids=["bytes", "png", "json", "utf16"],
)
def test_not_html(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a following page"):
        parse_following_page(body, status=200, url=FIRST_URL)


def test_no_users_but_a_next_link() -> None:
    with pytest.raises(ParseError, match="no users but links to a next page"):
        parse_following_page(list_page("", cursor="123"), status=200, url=FIRST_URL)


def test_later_page_with_no_users_and_no_next_link() -> None:
    with pytest.raises(ParseError, match="after a cursor has no users"):
        parse_following_page(list_page(""), status=200, url=LATER_URL)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (user_item("this_is_sixteen_"), "invalid screen name 'this_is_sixteen_'"),
        (user_item("bad-name"), "invalid screen name 'bad-name'"),
        (user_item("caf\u00e9"), "invalid screen name"),
        (user_item("grace_h").replace('name="grace_h"', 'name=""'), "invalid screen name ''"),
        (
            user_item("grace_h").replace('<a name="grace_h"></a>', ""),
            "user item 2 has no screen name",
        ),
        (user_item("grace_h").replace(' name="grace_h"', ""), "user item 2 has no screen name"),
        (user_item("grace_h").replace("screenname", "handle"), "user item 2 has no screen name"),
        (user_item("grace_h").replace("</span>grace_h", "</span>linus"), "shown as 'linus'"),
        (user_item("grace_h").replace("follow/grace_h", "follow/linus"), "follow form for"),
    ],
)
def test_a_bad_user_item_fails_the_page(item: str, message: str) -> None:
    body = list_page(user_item("ok_first") + item + user_item("ok_last"))
    with pytest.raises(ParseError, match=message):
        parse_following_page(body, status=200, url=FIRST_URL)


@pytest.mark.parametrize("status", [500, 503, 429, 302, 401, 403, 204])
def test_unexpected_status(status: int) -> None:
    with pytest.raises(ParseError, match=f"unexpected HTTP status {status}") as caught:
        parse_following_page(fixture("following_page1.html"), status=status, url=FIRST_URL)
    assert caught.value.url == FIRST_URL


def test_next_link_without_cursor() -> None:
    body = list_page(user_item("grace_h")).replace(
        b"</body>",
        b'<div class="w-button-more"><a href="/ada_example/following">x</a></div></body>',
    )
    with pytest.raises(ParseError, match="next-page link has no cursor"):
        parse_following_page(body, status=200, url=FIRST_URL)


def test_next_block_without_link() -> None:
    body = list_page(user_item("grace_h")).replace(
        b"</body>", b'<div class="w-button-more"><span>Show more</span></div></body>'
    )
    with pytest.raises(ParseError, match="next-page block has no link"):
        parse_following_page(body, status=200, url=FIRST_URL)


def test_next_link_back_to_the_same_cursor() -> None:
    body = list_page(user_item("grace_h"), cursor=PAGE1_CURSOR)
    with pytest.raises(ParseError, match="points back"):
        parse_following_page(body, status=200, url=LATER_URL)


@pytest.mark.parametrize("shown", ["", "lots", "1.2K", "12,34"])
def test_unreadable_following_count(shown: str) -> None:
    body = list_page(user_item("grace_h"), count=shown)
    with pytest.raises(ParseError, match="following count is not a number"):
        parse_following_page(body, status=200, url=FIRST_URL)


def test_page_of_another_account_is_refused_when_owner_is_given() -> None:
    body = fixture("following_page1.html")
    assert parse_following_page(body, status=200, owner="ADA_example").names == PAGE1_NAMES
    with pytest.raises(ParseError, match="page is for @ada_example, not @someone"):
        parse_following_page(body, status=200, url=FIRST_URL, owner="someone")


def test_protected_marker_inside_a_user_item_is_not_the_page_status() -> None:
    item = user_item("grace_h").replace(
        '<div class="bio">', '<div class="bio"><div class="protected">locked</div>'
    )
    page = parse_following_page(list_page(item), status=200, url=FIRST_URL)
    assert page.status is Status.OK
    assert page.names == ("grace_h",)


# --- screen names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "_", "A_b_9", "x" * 15, "jack"])
def test_valid_screen_names(name: str) -> None:
    assert is_valid_screen_name(name)
    assert SCREEN_NAME_RE.fullmatch(name)


@pytest.mark.parametrize("name", ["", "x" * 16, "a-b", "a b", "a\n", "\u0430dmin", "a.b", "@a"])
def test_invalid_screen_names(name: str) -> None:
    assert not is_valid_screen_name(name)


def test_cross_checks_belong_to_their_own_item() -> None:
    bare = (
        '<table class="user-item"><tr><td class="screenname">'
        '<a name="bare_one"></a></td></tr></table>'
    )
    page = parse_following_page(
        list_page(bare + user_item("grace_h") + bare.replace("bare_one", "bare_two")),
        status=200,
        url=FIRST_URL,
    )
    assert page.names == ("bare_one", "grace_h", "bare_two")


def test_user_item_nested_in_a_user_item_is_refused() -> None:
    nested = user_item("grace_h").replace('<div class="bio">', f'<div class="bio">{user_item("x")}')
    with pytest.raises(ParseError, match="user item inside a user item"):
        parse_following_page(list_page(nested), status=200, url=FIRST_URL)


def test_user_item_nested_without_a_name_cell_of_its_own_is_refused() -> None:
    """An item inside an item is refused whatever it holds: one without its own
    td.screenname used to take the next name cell of the item around it, and a page of
    one account was read as two."""

    def cell(name: str) -> str:
        return (
            f'<td class="screenname"><a name="{name}"></a><span class="username">@{name}</span>'
            f'<form action="/i/guest/follow/{name}"></form></td>'
        )

    inner = '<td><table class="user-item"><tr><td>inner</td></tr></table></td>'
    outer = f'<table class="user-item"><tr>{cell("grace_h")}{inner}{cell("Linus_T")}</tr></table>'
    with pytest.raises(ParseError, match="user item inside a user item"):
        parse_following_page(list_page(outer), status=200, url=FIRST_URL)


@pytest.mark.parametrize("doctype", ["<!DOCTYPE html>", ""])
def test_class_case_follows_the_documents_mode(doctype: str) -> None:
    """Without a doctype (quirks mode) classes match whatever their ASCII case, as in a
    browser: a page whose blocks are written in capitals is read whole, next link
    included; with a doctype they are other classes, and the page is no list page."""
    page = list_page(user_item("grace_h") + user_item("Linus_T"), cursor="77", count="2")
    shouted = (
        page.replace(b"<!DOCTYPE html>", doctype.encode())
        .replace(b'"user-item"', b'"User-Item"')
        .replace(b'"user-list"', b'"USER-LIST"')
        .replace(b'"w-button-more"', b'"W-Button-More"')
        .replace(b'"profile-stats"', b'"Profile-Stats"')
    )
    if doctype:
        with pytest.raises(ParseError, match="not a following page"):
            parse_following_page(shouted, status=200, url=FIRST_URL)
        return
    expected = parse_following_page(page, status=200, url=FIRST_URL)
    assert expected == Page(names=PAGE1_NAMES, next_cursor="77", following_count=2)
    assert parse_following_page(shouted, status=200, url=FIRST_URL) == expected


@pytest.mark.parametrize("doctype", ["<!DOCTYPE html>", ""])
def test_status_markers_follow_the_documents_mode_too(doctype: str) -> None:
    """A suspended page's body class, and a protected marker in a bio, are read with the
    same letter-case rule as the blocks of a list."""
    suspended = fixture("suspended.html")
    start = suspended.index(b"<html")
    shouted = doctype.encode() + suspended[start:].replace(
        b"account-suspended-page", b"Account-Suspended-Page"
    )
    if doctype:
        with pytest.raises(ParseError, match="not a following page"):
            parse_following_page(shouted, status=200, url=FIRST_URL)
    else:
        assert parse_following_page(shouted, status=200, url=FIRST_URL).status is Status.SUSPENDED
    bio = '<div class="protected">mine are</div>'
    items = user_item("grace_h", bio=bio) + user_item("Linus_T")
    body = list_page(items).replace(b"<!DOCTYPE html>", doctype.encode())
    body = body.replace(b'"user-item"', b'"User-Item"')
    if doctype:
        # Not user items here: the marker is the page's, and the page is protected.
        assert parse_following_page(body, status=200, url=FIRST_URL).status is Status.PROTECTED
    else:
        assert parse_following_page(body, status=200, url=FIRST_URL).names == PAGE1_NAMES
