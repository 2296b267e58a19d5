"""A 200 that is not the platform's answer (a captive portal's page, an empty body, JSON of
another shape) is told apart from a platform page wrong in its items: the first raises
NotPlatformAnswerError, which the collector hands to the circuit breaker as
``not_platform``; the second stays a plain ParseError, a failure of that user alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import test_utils, web

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.core.assemble import collect_config, http_config
from friendscrape.core.collect import Collector
from friendscrape.core.counters import RunCounters
from friendscrape.errors import LoginWallError, NotPlatformAnswerError, ParseError
from friendscrape.fetch.http import HttpClient
from friendscrape.models import Page, Status, User
from friendscrape.parse import bluesky, mastodon, twitter_mobile, x_api
from friendscrape.sources import make_source

FIXTURES = Path(__file__).parent.parent / "fixtures"
URL = "https://upstream.example/page"
ACTOR = "atproto.com"

CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Hotel WiFi</title></head><body><h1>Welcome</h1>"
    b'<form method="post" action="/accept"><input type="checkbox" name="terms">'
    b"<button>Connect</button></form></body></html>"
)
NOT_PLATFORM = {
    "captive_portal": CAPTIVE_PORTAL,
    "empty": b"",
    "blank": b" \r\n\t",
    "plain_text": b"Service Unavailable - please try again later",
    "status_json": b'{"status": "ok", "items": []}',
    "json_array": b'[{"status": "ok"}]',
    "json_string": b'"ok"',
    "json_null": b"null",
}
PROFILE_ONLY = (
    b'<html><body><table class="profile-details"><tr><td>'
    b'<div class="screen-name">ada</div></td></tr></table></body></html>'
)
SUBJECT = b'{"subject": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "%s"}, '
BLUESKY_BAD_ITEM = SUBJECT % b"atproto.com" + b'"follows": [{"did": "nope", "handle": "b.app"}]}'
BLUESKY_OTHER_SUBJECT = SUBJECT % b"other.com" + b'"follows": []}'

Parser = Callable[[bytes], Page]


def _twitter_mobile(body: bytes) -> Page:
    return twitter_mobile.parse_following_page(body, status=200, url=URL)


def _x_api(body: bytes) -> Page:
    return x_api.parse_following_page(body, status=200, url=URL)


def _bluesky(body: bytes) -> Page:
    return bluesky.parse_follows_page(body, status=200, url=URL, actor=ACTOR)


def _mastodon(body: bytes) -> Page:
    return mastodon.parse_following_page(body, status=200, url=URL, instance="mastodon.example")


PARSERS: dict[str, Parser] = {
    "twitter-mobile": _twitter_mobile,
    "x-api": _x_api,
    "bluesky": _bluesky,
    "mastodon": _mastodon,
}


def _fixture(folder: str, name: str) -> bytes:
    return (FIXTURES / folder / name).read_bytes()


def _not_platform_cases() -> list[tuple[str, str]]:
    cases = []
    for source in PARSERS:
        for answer in NOT_PLATFORM:
            if source == "mastodon" and answer == "json_array":
                continue  # an array of objects is Mastodon's shape: its items are checked
            cases.append((source, answer))
    return cases


@pytest.mark.parametrize(("source", "answer"), _not_platform_cases())
def test_an_answer_that_is_not_the_platforms_raises_not_platform_answer(
    source: str, answer: str
) -> None:
    with pytest.raises(NotPlatformAnswerError) as raised:
        PARSERS[source](NOT_PLATFORM[answer])
    assert raised.value.url == URL


@pytest.mark.parametrize(
    ("source", "body"),
    [
        # Cut before </html>: the site's page, cut short.
        ("twitter-mobile", _fixture("twitter-mobile", "following_page1.html")[:-400]),
        # The site's own profile header, but no list: its page, not a portal's.
        (
            "twitter-mobile",
            PROFILE_ONLY,
        ),
        # JSON cut short: it begins as the platform's answer does.
        ("x-api", _fixture("x-api-v2", "following_page1.json")[:40]),
        ("bluesky", _fixture("bluesky", "getFollows_page1.json")[:60]),
        ("mastodon", _fixture("mastodon", "following_page1.json")[:60]),
        # The platform's shape, one item wrong.
        ("x-api", b'{"data": [{"id": "abc", "username": "ok"}], "meta": {"result_count": 1}}'),
        (
            "bluesky",
            BLUESKY_BAD_ITEM,
        ),
        ("mastodon", b'[{"id": "1", "acct": "not an acct!"}]'),
        # Data without meta: X's fields, not all of them.
        ("x-api", b'{"data": [{"id": "1", "username": "ok"}]}'),
        # An answer about another account.
        (
            "bluesky",
            BLUESKY_OTHER_SUBJECT,
        ),
    ],
)
def test_a_platform_page_wrong_in_its_items_stays_a_plain_parse_error(
    source: str, body: bytes
) -> None:
    with pytest.raises(ParseError) as raised:
        PARSERS[source](body)
    assert not isinstance(raised.value, NotPlatformAnswerError), raised.value


@pytest.mark.parametrize(
    ("source", "body", "status"),
    [
        ("twitter-mobile", _fixture("twitter-mobile", "protected.html"), Status.PROTECTED),
        ("twitter-mobile", _fixture("twitter-mobile", "suspended.html"), Status.SUSPENDED),
        ("twitter-mobile", _fixture("twitter-mobile", "empty_list.html"), Status.OK),
        ("x-api", _fixture("x-api-v2", "error_not_found.json"), Status.NOT_FOUND),
        ("x-api", _fixture("x-api-v2", "following_none.json"), Status.OK),
        ("mastodon", _fixture("mastodon", "hidden_network.json"), Status.OK),
    ],
)
def test_the_platforms_own_answers_about_a_user_keep_their_status(
    source: str, body: bytes, status: Status
) -> None:
    assert PARSERS[source](body).status is status


def test_the_error_shows_how_a_body_that_is_not_json_begins() -> None:
    with pytest.raises(NotPlatformAnswerError, match=r"it begins '<!DOCTYPE html><html>"):
        _x_api(b"\n  " + CAPTIVE_PORTAL)


def test_a_login_wall_keeps_its_own_class() -> None:
    with pytest.raises(LoginWallError):
        _twitter_mobile(_fixture("twitter-mobile", "login_wall.html"))


def test_look_ups_that_are_not_the_platforms_answer_raise_it_too() -> None:
    with pytest.raises(NotPlatformAnswerError):
        x_api.parse_users_by(b'{"status": "ok"}', status=200, url=URL, usernames=["ada"])
    with pytest.raises(NotPlatformAnswerError):
        x_api.parse_users_by(CAPTIVE_PORTAL, status=200, url=URL, usernames=["ada"])
    with pytest.raises(NotPlatformAnswerError):
        mastodon.parse_lookup(b'{"status": "ok"}', status=200, url=URL, acct="ada")
    with pytest.raises(NotPlatformAnswerError):
        mastodon.parse_lookup(b"", status=200, url=URL, acct="ada")


# -- what the collector tells the circuit breaker ---------------------------------------


async def _portal(_request: web.Request) -> web.Response:
    return web.Response(body=CAPTIVE_PORTAL, content_type="text/html")


async def _cut_short(_request: web.Request) -> web.Response:
    return web.json_response(text='{"data": [{"id": "1", "username": "ok"}], "me')


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """``/portal`` answers every path with a captive portal; ``/cut`` with X API JSON
    cut short."""
    app = web.Application()
    app.router.add_get("/portal/{tail:.*}", _portal)
    app.router.add_get("/cut/{tail:.*}", _cut_short)
    server = test_utils.TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _collector(base_url: str, source: str, http: HttpClient) -> Collector:
    settings = Settings(source=source, base_url=base_url, fetch_attempts=1)
    return Collector(
        collect_config(settings),
        make_source(source_config(settings)),
        http,
        partition=1,
        stats=RunCounters(),
    )


@pytest.mark.parametrize(
    ("source", "user", "path"),
    [
        ("twitter-mobile", User("1", "ada"), "/ada/following"),
        ("x-api", User("783214", "x"), "/2/users/783214/following?max_results=1000"),
        ("x-api", User("ada", "ada"), "/2/users/by?usernames=ada"),  # the look-up
        ("bluesky", User("1", ACTOR), "/xrpc/app.bsky.graph.getFollows?actor=atproto.com"),
        ("mastodon", User("1", "42@mastodon.example"), "/api/v1/accounts/42/following"),
    ],
)
async def test_a_captive_portal_is_an_upstream_wide_failure_named_not_platform(
    upstream: str, source: str, user: User, path: str
) -> None:
    base = f"{upstream}/portal"
    async with HttpClient(http_config(Settings(fetch_attempts=1))) as http:
        outcome = await _collector(base, source, http).collect_outcome(user)
    assert outcome.result.status is Status.FAILED
    assert outcome.failure is not None
    assert outcome.failure.cause == "not_platform"
    assert outcome.failure.url.startswith(f"{base}{path}"), outcome.failure.url
    assert outcome.result.error is not None
    assert outcome.result.error.startswith("not_platform: "), outcome.result.error


async def test_a_platform_answer_cut_short_is_that_users_failure_alone(upstream: str) -> None:
    async with HttpClient(http_config(Settings(fetch_attempts=1))) as http:
        outcome = await _collector(f"{upstream}/cut", "x-api", http).collect_outcome(
            User("783214", "x")
        )
    assert outcome.result.status is Status.FAILED
    assert outcome.failure is None
    assert outcome.result.error is not None
    assert outcome.result.error.startswith("parse: "), outcome.result.error
