"""Tests of the twitter-mobile source: user checks, URLs, and reading responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import test_utils, web

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.errors import LoginWallError, ParseError, UsageError
from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.models import Page, Status, User
from friendscrape.sources import make_source
from friendscrape.sources.base import Source
from friendscrape.sources.twitter_mobile import DEFAULT_BASE_URL, TwitterMobileSource

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twitter-mobile"
ADA = User(user_id="1", screen_name="ada_example")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def response(url: str, body: bytes, status: int = 200) -> RawResponse:
    return RawResponse(url=url, status=status, headers={"content-type": "text/html"}, body=body)


def test_is_a_source_named_twitter_mobile() -> None:
    source: Source = TwitterMobileSource()
    assert source.name == "twitter-mobile"


def test_make_source_passes_the_base_url() -> None:
    source = make_source(
        source_config(Settings(source="twitter-mobile", base_url="http://127.0.0.1:9/"))
    )
    assert isinstance(source, TwitterMobileSource)
    assert source.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("name", ["ada_example", "a", "_", "X" * 15, "Linus_T"])
def test_check_user_accepts_possible_names(name: str) -> None:
    assert TwitterMobileSource().check_user(User(user_id="1", screen_name=name)) is None


@pytest.mark.parametrize(
    "name", ["", "x" * 16, "bad-name", "a b", "../../etc", "ada?x=1", "caf\u00e9", "a/b", "a\n"]
)
def test_check_user_gives_a_reason_for_impossible_names(name: str) -> None:
    source = TwitterMobileSource()
    user = User(user_id="1", screen_name=name)
    reason = source.check_user(user)
    assert reason is not None
    assert "1-15 letters, digits or underscores" in reason
    with pytest.raises(ValueError, match="not 1-15"):
        source.page_request(user, None)


def test_first_page_request_uses_the_default_site() -> None:
    request = TwitterMobileSource().page_request(ADA, None)
    assert request == PageRequest(
        url="https://mobile.twitter.com/ada_example/following", headers={"accept": "text/html"}
    )
    assert DEFAULT_BASE_URL == "https://mobile.twitter.com"


def test_later_page_request_quotes_the_cursor() -> None:
    source = TwitterMobileSource("http://127.0.0.1:8080/mirror/")
    assert (
        source.page_request(ADA, "1603141412870551205").url
        == "http://127.0.0.1:8080/mirror/ada_example/following?cursor=1603141412870551205"
    )
    assert (
        source.page_request(ADA, "-1 a/b&c=d?#é").url
        == "http://127.0.0.1:8080/mirror/ada_example/following?cursor=-1%20a%2Fb%26c%3Dd%3F%23%C3%A9"
    )


def test_empty_cursor_is_refused() -> None:
    with pytest.raises(ValueError, match="cursor must be non-empty"):
        TwitterMobileSource().page_request(ADA, "")


@pytest.mark.parametrize(
    "base", ["mobile.twitter.com", "ftp://host", "http://", "http://h/?q=1", "http://h/#x"]
)
def test_bad_base_url_is_a_usage_error(base: str) -> None:
    with pytest.raises(UsageError, match="base URL"):
        TwitterMobileSource(base)


def test_parse_reads_a_list_page() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    url = source.page_request(ADA, None).url
    page = source.parse(ADA, response(url, fixture("following_page1.html")))
    assert page == Page(
        names=("grace_h", "Linus_T"), next_cursor="1603141412870551205", following_count=3
    )


@pytest.mark.parametrize(
    ("name", "status", "expected"),
    [
        ("protected.html", 200, Status.PROTECTED),
        ("suspended.html", 200, Status.SUSPENDED),
        ("not_found.html", 404, Status.NOT_FOUND),
    ],
)
def test_parse_reads_account_states(name: str, status: int, expected: Status) -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    user = User(user_id="9", screen_name="private_person")
    page = source.parse(user, response(source.page_request(user, None).url, fixture(name), status))
    assert page.status is expected
    assert page.names == ()


def test_parse_errors_keep_the_response_url() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    url = source.page_request(ADA, "5").url
    with pytest.raises(ParseError, match="not a following page") as caught:
        source.parse(ADA, response(url, fixture("login_wall.html")))
    assert caught.value.url == url
    with pytest.raises(ParseError, match="unexpected HTTP status 500") as caught:
        source.parse(ADA, response(url, b"oops", 500))
    assert caught.value.url == url


def test_a_redirect_to_the_login_page_is_a_login_wall() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    landed = "http://127.0.0.1:1/login?redirect_after_login=%2Fada_example%2Ffollowing"
    with pytest.raises(LoginWallError, match="not the following page of @ada_example") as caught:
        source.parse(ADA, response(landed, fixture("login_wall.html")))
    assert caught.value.url == landed


def test_a_redirect_elsewhere_is_an_error_but_no_login_wall() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    landed = "http://127.0.0.1:1/home"
    with pytest.raises(ParseError, match="not the following page of @ada_example") as caught:
        source.parse(ADA, response(landed, fixture("following_page1.html")))
    assert not isinstance(caught.value, LoginWallError)


def test_a_page_of_another_account_is_an_error() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    other = User(user_id="2", screen_name="someone_else")
    url = source.page_request(other, None).url
    with pytest.raises(ParseError, match="page is for @ada_example, not @someone_else"):
        source.parse(other, response(url, fixture("following_page1.html")))


def test_screen_name_case_in_the_url_does_not_matter() -> None:
    source = TwitterMobileSource("http://127.0.0.1:1")
    page = source.parse(
        ADA, response("http://127.0.0.1:1/Ada_Example/following/", fixture("following_page1.html"))
    )
    assert page.names == ("grace_h", "Linus_T")


# --- against a real local server -------------------------------------------------------


async def serve_following(request: web.Request) -> web.Response:
    """The sample pages, served the way the site served them."""
    name = request.match_info["name"]
    cursor = request.query.get("cursor")
    if name != "ada_example":
        return web.Response(status=404, body=fixture("not_found.html"), content_type="text/html")
    page = "following_page1.html" if cursor is None else "following_page2_last.html"
    if cursor not in {None, "1603141412870551205"}:
        return web.Response(status=400, text="bad cursor")
    return web.Response(body=fixture(page), content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{name}/following", serve_following)
    server = test_utils.TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def collect(source: TwitterMobileSource, user: User) -> list[Page]:
    """Follow next cursors to the end, as the pipeline does."""
    pages: list[Page] = []
    cursor: str | None = None
    async with aiohttp.ClientSession() as session:
        while True:
            request = source.page_request(user, cursor)
            async with session.get(request.url, headers=dict(request.headers)) as resp:
                raw = RawResponse(
                    url=str(resp.url),
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=await resp.read(),
                )
            page = source.parse(user, raw)
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                return pages


async def test_collects_a_whole_list_from_a_local_site(site: str) -> None:
    pages = await collect(TwitterMobileSource(site), ADA)
    assert [p.names for p in pages] == [("grace_h", "Linus_T"), ("_margaret",)]
    assert pages[0].following_count == 3
    assert sum(len(p.names) for p in pages) == pages[0].following_count


async def test_unknown_user_on_a_local_site_is_not_found(site: str) -> None:
    pages = await collect(TwitterMobileSource(site), User(user_id="3", screen_name="nobody_here"))
    assert [p.status for p in pages] == [Status.NOT_FOUND]
