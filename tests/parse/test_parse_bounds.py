"""Hostile bodies under the size cap: a page nested deep enough to hold the event loop for
minutes, or JSON nested past the interpreter's recursion limit, fail with a ParseError
that names the bound, quickly; real pages stay well inside the bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from friendscrape.errors import ParseError
from friendscrape.models import Page, Status
from friendscrape.parse import bluesky, mastodon, twitter_mobile, x_api
from friendscrape.simulator import MobileSite, SyntheticGraph

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twitter-mobile"
URL = "https://mobile.example/ada_example/following?cursor=7"
# The page: 150,000 nested <div> (750 KB, under the body cap) before a user list.
# Before the bound lexbor took 255 s on it (20,000: 1.3 s). Whatever the machine,
# refusing must cost a few milliseconds, not the tree build.
QUICK = 0.5


def deep_page(divs: int) -> bytes:
    """A valid last page with ``divs`` nested <div> before its user list."""
    page = (FIXTURES / "following_page2_last.html").read_bytes()
    cut = page.index(b"<body")
    cut = page.index(b">", cut) + 1
    return page[:cut] + b"<div>" * divs + page[cut:]


@pytest.mark.parametrize("divs", [20_000, 150_000])
def test_deeply_nested_page_is_refused_quickly_naming_the_bound(divs: int) -> None:
    started = time.perf_counter()
    with pytest.raises(ParseError, match=r"tags, over the bound of 6,000") as err:
        twitter_mobile.parse_following_page(deep_page(divs), status=200, url=URL)
    assert time.perf_counter() - started < QUICK
    assert err.value.url == URL


def test_deep_404_page_is_still_not_found_without_being_parsed() -> None:
    started = time.perf_counter()
    not_found = (FIXTURES / "not_found.html").read_bytes()
    cut = not_found.index(b"<div")
    body = not_found[:cut] + b"<div>" * 150_000 + not_found[cut:]
    page = twitter_mobile.parse_following_page(body, status=404, url=URL)
    assert time.perf_counter() - started < QUICK
    assert page.status is Status.NOT_FOUND
    assert page.detail == "HTTP 404"


def test_a_page_just_inside_the_bound_is_parsed() -> None:
    page = deep_page(0)
    inside = deep_page(twitter_mobile.MAX_TAGS - page.count(b"<"))
    assert inside.count(b"<") == twitter_mobile.MAX_TAGS
    assert twitter_mobile.parse_following_page(inside, status=200, url=URL).names == ("_margaret",)


def test_a_body_too_short_to_hold_more_tags_than_the_bound_is_not_counted() -> None:
    """A tag takes three bytes at least, so a body of at most 3 x MAX_TAGS bytes cannot
    nest deeper than the bound, whatever its count of ``<``: it is parsed, not counted.
    A longer one is counted and refused past the bound."""
    most = 3 * twitter_mobile.MAX_TAGS
    with pytest.raises(ParseError, match="not a following page"):
        twitter_mobile.parse_following_page(b"<" * most, status=200, url=URL)
    deepest = b"<b>" * twitter_mobile.MAX_TAGS
    assert len(deepest) == most
    with pytest.raises(ParseError, match="not a following page"):
        twitter_mobile.parse_following_page(deepest, status=200, url=URL)
    with pytest.raises(ParseError, match="over the bound of 6,000"):
        twitter_mobile.parse_following_page(b"<" * (most + 1), status=200, url=URL)


@pytest.mark.parametrize("page_size", [20, 100])
def test_simulator_pages_of_up_to_100_users_are_well_inside_the_bound(page_size: int) -> None:
    graph = SyntheticGraph(50, mean_friends=400)
    account = max(graph.accounts(), key=lambda a: a.following_count)
    names = graph.listing(account, 0, page_size)
    assert len(names) == page_size
    body = MobileSite(graph, page_size).render_list(account, 0, names, 1).encode()
    assert body.count(b"<") < twitter_mobile.MAX_TAGS * 2 // 3
    page = twitter_mobile.parse_following_page(
        body, status=200, url="https://m.example/x/following"
    )
    assert len(page.names) == page_size


def test_every_fixture_is_far_inside_the_bound() -> None:
    for path in FIXTURES.glob("*.html"):
        assert path.read_bytes().count(b"<") < twitter_mobile.MAX_TAGS // 10, path.name


# -- JSON sources ------------------------------------------------------------------------

DEEP_JSON = [b"[" * 750_000, b'{"data":' * 150_000, b'{"follows": [' + b"[" * 100_000]


@pytest.mark.parametrize("body", DEEP_JSON, ids=["arrays", "objects", "inside-a-field"])
@pytest.mark.parametrize("status", [200, 400, 404, 500])
def test_deeply_nested_json_is_a_parse_error_in_every_json_source(body: bytes, status: int) -> None:
    calls = [
        lambda: x_api.parse_following_page(body, status=status, url=URL),
        lambda: bluesky.parse_follows_page(body, status=status, url=URL, actor="a.example.com"),
        lambda: mastodon.parse_following_page(
            body, status=status, url=URL, instance="mastodon.example"
        ),
    ]
    for call in calls:
        started = time.perf_counter()
        try:
            outcome: Page | ParseError = call()
        except ParseError as exc:
            outcome = exc
        assert time.perf_counter() - started < QUICK
        if isinstance(outcome, Page):  # a 404 may be a status whatever its body says
            assert outcome.status is not Status.OK
        elif status == 200:
            assert "nested too deeply" in str(outcome)


@pytest.mark.parametrize(
    "body", [b'{"meta": {"result_count": ' + b"9" * 5000 + b"}}", b"[" + b"1" * 10_000 + b"]"]
)
def test_numbers_too_long_to_convert_are_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="not valid JSON"):
        x_api.parse_following_page(body, status=200, url=URL)
    with pytest.raises(ParseError, match="not valid JSON"):
        mastodon.parse_following_page(body, status=200, url=URL, instance="mastodon.example")
