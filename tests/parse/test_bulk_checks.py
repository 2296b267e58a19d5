"""The bulk checks of a page give what the careful item-by-item reading gives, always.

Each parser reads a page as the site sends it in bulk (one tree walk and one match over
all names; typed JSON decoding and one match per field) and falls back to the careful
path for anything else. These properties run both on the same bodies, valid and not,
with the bulk path turned off for the second run, and compare pages and error messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from friendscrape.errors import ParseError
from friendscrape.models import Page
from friendscrape.parse import bluesky, json_pages, mastodon, twitter_mobile, x_api
from friendscrape.parse.json_pages import all_made_of, ascii_charset
from friendscrape.simulator import MobileSite, SyntheticGraph
from friendscrape.simulator.bluesky import Bluesky, handle_of
from friendscrape.simulator.graph import AccountKind
from friendscrape.simulator.mastodon import Mastodon
from friendscrape.simulator.x_api import XApi

FIXTURES = Path(__file__).parent.parent / "fixtures"
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
NEVER = re.compile(r"(?!)")

Outcome = tuple[str, object]


def outcome(read: Callable[[], Page]) -> Outcome:
    """The page, or the error's type and message."""
    try:
        return ("page", read())
    except ParseError as exc:
        return (type(exc).__name__, (str(exc), exc.url))


def both_ways(module: ModuleType, read: Callable[[], Page]) -> tuple[Outcome, Outcome]:
    """``read()`` as shipped, and with the bulk path of ``module`` turned off."""
    shipped = outcome(read)
    with pytest.MonkeyPatch.context() as patch:
        if module is twitter_mobile:
            patch.setattr(module, "_NAMES_RE", NEVER)
            patch.setattr(module, "_site_walk", lambda nodes: None)  # node by node
        else:
            patch.setattr(module, "decode_typed", lambda decoder, body: None)
        careful = outcome(read)
    return shipped, careful


# -- the mobile site ----------------------------------------------------------------------

GRAPH = SyntheticGraph(400, seed=3)
SITE = MobileSite(GRAPH)
OK_ACCOUNTS = [a for a in GRAPH.accounts() if a.kind is AccountKind.OK and a.following_count > 25][
    :20
]
SIM_PAGES = [SITE.following(a.screen_name, None).body for a in OK_ACCOUNTS] + [
    SITE.following(a.screen_name, SITE.cursor(a, 1)).body for a in OK_ACCOUNTS
]
HTML_SAMPLES = tuple(p.read_bytes() for p in sorted((FIXTURES / "twitter-mobile").glob("*.html")))
# Edits that keep a page readable but leave the bulk path (or should make it fail).
HTML_EDITS = (
    (b'<a name="', b'<a name=" '),
    (b'<a name="', b'<a name="\n'),
    (b"<span>@</span>", b"<span>@ </span>"),
    (b"<span>@</span>", b""),
    (b'action="/i/guest/follow/', b'action="/i/guest/follow/x'),
    (b'action="/i/guest/follow/', b'action="/i/guest/follow/%41'),
    (b'" method="post">', b'?x=1" method="post">'),
    (b"</form>", b'</form><form action="/i/guest/follow/zed"></form>'),
    (b'<span class="username">', b'<span class="username">X'),
    (b'<td class="info fifty screenname">', b'<td class="info fifty screenname"><a href="/">'),
    (b'<a name="', b'<a nom="'),
    # Pages that leave the site's layout, which the tree walk reads without looking at
    # each node (what it finds must be what the node-by-node walk finds).
    (b'<table class="user-item">', b'<table class="user-item other">'),
    (b'<table class="user-item">', b'<table class="User-item">'),
    (b"</table>", b'</table><table class="profile-stats"></table>'),
    (b"</table>", b'</table><div class="protected">protected</div>'),
    (b'<div class="bio">', b'<div class="bio"><table class="user-item"></table>'),
    (b'<div class="user-list">', b"<div>"),
    (b'<div class="w-button-more">', b'<div class="w-button-more x">'),
    (b'<table class="user-item">', b""),
)


def html_case(body: bytes, edit: int, nth: int) -> bytes:
    """``body`` with the ``nth`` occurrence of one of HTML_EDITS applied, lower- or
    upper-cased names included."""
    old, new = HTML_EDITS[edit % len(HTML_EDITS)]
    at = -1
    for _ in range(nth % 20 + 1):
        found = body.find(old, at + 1)
        if found < 0:
            break
        at = found
    if at < 0:
        return body
    return body[:at] + new + body[at + len(old) :]


@PROPERTY
@given(
    page=st.sampled_from(SIM_PAGES + list(HTML_SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=3),
    upper=st.booleans(),
)
def test_html_bulk_and_careful_paths_agree(
    page: bytes, edits: list[tuple[int, int]], upper: bool
) -> None:
    for edit, nth in edits:
        page = html_case(page, edit, nth)
    if upper:  # names shown in another letter case: the careful path accepts that
        page = page.replace(b"<span>@</span>", b"<span>@</span>".upper())
    shipped, careful = both_ways(
        twitter_mobile, lambda: twitter_mobile.parse_following_page(page, status=200, url="u")
    )
    assert shipped == careful


def test_html_site_pages_take_the_site_walk() -> None:
    for body in SIM_PAGES:
        if b"profile-stats" in body:  # a first page: its header is read node by node
            continue
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(twitter_mobile, "_nodes_walk", None)
            page = twitter_mobile.parse_following_page(body, status=200)
        assert len(page.names) == 20


def test_html_site_pages_take_the_bulk_path() -> None:
    for body in SIM_PAGES:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(twitter_mobile, "_screen_name", None)  # the per-item path
            page = twitter_mobile.parse_following_page(body, status=200)
        assert len(page.names) == 20


# -- JSON sources ------------------------------------------------------------------------

TEXT = st.sampled_from(
    [
        "",
        "0",
        "07",
        "1",
        "99",
        "17999999999999999999",
        "18000000000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901",
        "\uff11\uff12",
        "12\n34",
        "a\nb",
        "grace_h",
        "Grace_H",
        "x" * 15,
        "x" * 16,
        "caf\u00e9",
        "bad-name",
        "a.bsky.social",
        "1a.bsky.social",
        "a.1bsky",
        "did:plc:abcdefghijklmnopqrstuvwx",
        "did:web:example.com",
        "did:x:",
        "alice@example.social",
        "alice@",
    ]
)
VALUE: st.SearchStrategy[Any] = (
    TEXT | st.integers(-2, 3) | st.booleans() | st.none() | st.just([]) | st.just({})
)
# Valid values, drawn most of the time so that whole pages pass the bulk checks.
VALID = {
    "id": ["1", "99", "17999999999999999999", "18446744073709551615", "a1"],
    "username": ["grace_h", "Grace_H", "x"],
    "did": ["did:plc:abcdefghijklmnopqrstuvwx", "did:web:example.com"],
    "handle": ["a.bsky.social", "A.Bsky.Social", "b.example"],
    "acct": ["alice", "alice@example.social", "a.b-c"],
}


@st.composite
def item(draw: st.DrawFn, keys: tuple[str, ...]) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(VALUE)
    doc: dict[str, Any] = {
        key: draw(st.sampled_from(VALID[key]) if draw(st.integers(0, 3)) else TEXT)
        for key in keys
        if draw(st.integers(0, 20))
    }
    if draw(st.booleans()):
        doc[draw(st.sampled_from([*keys, "name", "x"]))] = draw(VALUE)
    return doc


def dumps(doc: object, draw: st.DrawFn) -> bytes:
    text = json.dumps(doc)
    if draw(st.integers(0, 10)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


@st.composite
def x_pages(draw: st.DrawFn) -> bytes:
    data = draw(st.lists(item(("id", "username")), max_size=4))
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["result_count"] = draw(st.sampled_from([len(data), len(data) + 1, True, -1, 1.0]))
    if draw(st.booleans()):
        meta["next_token"] = draw(st.sampled_from(["T1", "", None, 5]))
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 5)):
        doc["data"] = data
    if draw(st.integers(0, 5)):
        doc["meta"] = meta if draw(st.integers(0, 10)) else draw(VALUE)
    if draw(st.integers(0, 4)) == 0:
        doc["errors"] = draw(st.sampled_from([[], None, [{"type": "x"}], "e"]))
    return dumps(doc, draw)


@PROPERTY
@given(body=x_pages())
def test_x_api_bulk_and_careful_paths_agree(body: bytes) -> None:
    shipped, careful = both_ways(
        x_api, lambda: x_api.parse_following_page(body, status=200, url="u")
    )
    assert shipped == careful


@st.composite
def bluesky_pages(draw: st.DrawFn) -> tuple[bytes, str]:
    subject = draw(item(("did", "handle")))
    if isinstance(subject, dict) and draw(st.booleans()):
        subject["followsCount"] = draw(st.sampled_from([0, 3, -1, True, 2.0, "3"]))
    doc: dict[str, Any] = {"subject": subject}
    if draw(st.integers(0, 8)):
        doc["follows"] = draw(st.lists(item(("did", "handle")), max_size=4))
    if draw(st.booleans()):
        doc["cursor"] = draw(st.sampled_from(["c1", "", None, 1]))
    actor = draw(st.sampled_from(["", "a.bsky.social", "A.Bsky.Social", "did:web:example.com"]))
    return dumps(doc, draw), actor


@PROPERTY
@given(case=bluesky_pages())
def test_bluesky_bulk_and_careful_paths_agree(case: tuple[bytes, str]) -> None:
    body, actor = case
    shipped, careful = both_ways(
        bluesky, lambda: bluesky.parse_follows_page(body, status=200, url="u", actor=actor)
    )
    assert shipped == careful


@st.composite
def mastodon_pages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 10)) == 0:
        return dumps(draw(VALUE), draw)
    return dumps(draw(st.lists(item(("id", "acct")), max_size=4)), draw)


@PROPERTY
@given(body=mastodon_pages())
def test_mastodon_bulk_and_careful_paths_agree(body: bytes) -> None:
    shipped, careful = both_ways(
        mastodon,
        lambda: mastodon.parse_following_page(
            body, status=200, url="https://i.example/p", instance="i.example"
        ),
    )
    assert shipped == careful


def test_simulator_json_pages_take_the_bulk_path() -> None:
    x, bsky, masto = XApi(GRAPH), Bluesky(GRAPH), Mastodon(GRAPH)
    for account in OK_ACCOUNTS:
        with pytest.MonkeyPatch.context() as patch:
            for module in (x_api, bluesky, mastodon):
                patch.setattr(module, "load_object", None, raising=False)
                patch.setattr(module, "load_json", None, raising=False)
            body = x.following(account.user_id, {"max_results": "1000"}, None).body
            assert x_api.parse_following_page(body, status=200).names
            handle = handle_of(account.screen_name)
            body = bsky.get_follows({"actor": handle, "limit": "100"}).body
            assert bluesky.parse_follows_page(body, status=200, actor=handle).names
            body = masto.following(account.user_id, {"limit": "80"}, "https://i.example").body
            assert mastodon.parse_following_page(body, status=200, instance="i.example").names


def test_x_api_bulk_pages_carry_their_names_and_ids_joined() -> None:
    x = XApi(GRAPH)
    for account in OK_ACCOUNTS:
        body = x.following(account.user_id, {"max_results": "1000"}, None).body
        page = x_api.parse_following_page(body, status=200)
        assert page.joined == ("\n".join(page.names), "\n".join(page.ids))
    # The careful path (errors beside the data: the bulk path leaves the page) makes none.
    doc = {"data": [{"id": "1", "username": "a"}], "errors": [{"title": "x"}], "meta": {}}
    careful = x_api.parse_following_page(json.dumps(doc).encode(), status=200)
    assert careful.names == ("a",)
    assert careful.joined is None


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"id": "12\n34", "username": "ab"}, "invalid id"),
        ({"id": "12", "username": "ab\ncd"}, "invalid username"),
    ],
)
def test_an_escaped_line_feed_in_an_x_api_value_is_still_caught(
    item: dict[str, str], problem: str
) -> None:
    """A page without a backslash has no line feed to count in its values; one with an
    escape is counted, so a value holding a line feed between two valid halves is not
    taken for two values."""
    doc = {"data": [item, {"id": "5", "username": "e"}], "meta": {"result_count": 2}}
    body = json.dumps(doc).encode()
    assert not json_pages.unescaped(body)
    with pytest.raises(ParseError, match=problem):
        x_api.parse_following_page(body, status=200)


def test_unescaped_says_whether_a_json_body_holds_an_escape() -> None:
    assert json_pages.unescaped(b'{"data": [{"id": "1", "username": "a"}]}')
    assert not json_pages.unescaped(b'{"data": [{"id": "1", "username": "a\\u00e9"}]}')
    assert not json_pages.unescaped(json.dumps({"name": "a\nb"}).encode())
    body = XApi(GRAPH).following(OK_ACCOUNTS[0].user_id, {"max_results": "1000"}, None).body
    assert json_pages.unescaped(body)  # as the site sends a list: nothing counted


# Every lines pattern in use, its item pattern, and characters its items are made of
# (those that match and those next to them that do not).
LINES = [
    (x_api._IDS, x_api.BULK_ID, "0123456789"),
    (mastodon._IDS, mastodon.ACCOUNT_ID_RE.pattern, "aZ09_"),
    (mastodon._ACCTS, mastodon._ACCT_RE.pattern, "aZ09_.-@"),
    (bluesky._DIDS, bluesky._ANY_DID_RE.pattern, "did:plcweb.%-_aZ09"),
    (bluesky._HANDLES, bluesky.HANDLE_RE.pattern, "aZ09-."),
]


@st.composite
def lines_case(draw: st.DrawFn) -> tuple[re.Pattern[str], re.Pattern[str], list[str]]:
    lines, item_pattern, alphabet = draw(st.sampled_from(LINES))
    item_re = re.compile(item_pattern)
    value = st.one_of(
        st.text(alphabet, max_size=24),
        # Lengths around the items' bounds: 15, 19, 20, 61-64 characters.
        st.integers(1, 66).flatmap(lambda n: st.text(alphabet, min_size=n, max_size=n)),
        st.sampled_from(["1" + "7" * 19, "18" + "0" * 18, "did:plc:ab", "a.b", "a@b.c"]),
    )
    return lines, item_re, draw(st.lists(value, min_size=1, max_size=6))


@PROPERTY
@given(case=lines_case())
def test_a_lines_pattern_matches_exactly_when_every_line_does(
    case: tuple[re.Pattern[str], re.Pattern[str], list[str]],
) -> None:
    """The possessive repeat of lines_re never turns away lines that each match."""
    lines, item_re, values = case
    every = all(item_re.fullmatch(value) is not None for value in values)
    assert (lines.fullmatch("\n".join(values)) is not None) == every


@PROPERTY
@given(values=st.lists(st.text("aZ09_-.\n\u00e9\x00 ", max_size=6), max_size=5))
def test_all_made_of_says_whether_every_value_is_made_of_the_charset(values: list[str]) -> None:
    allowed = set("aZ09_")
    every = all(set(value) <= allowed for value in values)
    assert all_made_of(ascii_charset("aZ09_"), values) == every
