"""The walk over one user's pages against a real local server: each friend once, an
upstream looping under fresh cursors ends as failed, and a generic 404 is no not_found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import test_utils, web

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.core.assemble import collect_config, http_config
from friendscrape.core.collect import Collector
from friendscrape.core.counters import RunCounters
from friendscrape.fetch.http import HttpClient
from friendscrape.models import FriendList, Status, User
from friendscrape.sources import make_source

FIXTURES = Path(__file__).parent.parent / "fixtures"
NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
SAME_20 = [{"id": str(500 + n), "username": f"same_{n}"} for n in range(20)]
# Lists of one page: whole, and with a friend listed twice.
ONE_PAGE = {"8": [11, 12, 13, 14], "9": [11, 12, 12, 13]}


def _x_page(ids: list[int], next_token: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"result_count": len(ids)}
    if next_token is not None:
        meta["next_token"] = next_token
    return {"data": [{"id": str(i), "username": f"d{i - 10}"} for i in ids], "meta": meta}


async def _x_following(request: web.Request) -> web.Response:
    """X API pages for two hostile users."""
    user_id = request.match_info["id"]
    token = request.query.get("pagination_token")
    if user_id in ONE_PAGE:
        return web.json_response(_x_page(ONE_PAGE[user_id], None))
    if user_id == "1":  # the case: [d1,d2,d2,d3] then [d3,d1]
        doc = _x_page([11, 12, 12, 13], "p2") if token is None else _x_page([13, 11], None)
        return web.json_response(doc)
    # The same 20 accounts under a fresh cursor on every page, forever.
    page = int(token or "0") + 1
    return web.json_response(
        {"data": SAME_20, "meta": {"result_count": 20, "next_token": str(page)}}
    )


async def _mobile_following(request: web.Request) -> web.Response:
    """The mobile site: ada_example's first page again and again, with a fresh cursor;
    any other name gets a web server's 404, not the site's own page."""
    if request.match_info["name"] != "ada_example":
        return web.Response(status=404, text=NGINX_404, content_type="text/html")
    page = int(request.query.get("cursor", "0")) + 1
    body = (FIXTURES / "twitter-mobile" / "following_page1.html").read_text()
    body = body.replace("cursor=1603141412870551205", f"cursor={page}")
    return web.Response(text=body, content_type="text/html")


async def _mastodon_following(request: web.Request) -> web.Response:
    return web.Response(status=404, text=NGINX_404, content_type="text/html")


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/2/users/{id}/following", _x_following)
    app.router.add_get("/{name}/following", _mobile_following)
    app.router.add_get("/api/v1/accounts/{id}/following", _mastodon_following)
    server = test_utils.TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _collector(
    base_url: str, source: str, http: HttpClient, max_friends: int | None = None
) -> Collector:
    settings = Settings(source=source, base_url=base_url, fetch_attempts=1, max_pages=1000)
    if max_friends is not None:
        settings = settings.model_copy(update={"max_friends": max_friends})
    return Collector(
        collect_config(settings),
        make_source(source_config(settings)),
        http,
        partition=1,
        stats=RunCounters(),
    )


async def _collect(
    base_url: str, source: str, user: User, max_friends: int | None = None
) -> FriendList:
    async with HttpClient(http_config(Settings(fetch_attempts=1))) as http:
        return await _collector(base_url, source, http, max_friends).collect(user)


async def test_a_friend_listed_twice_is_kept_once_at_its_first_position(upstream: str) -> None:
    row = await _collect(upstream, "x-api", User("1", "ada"))
    assert row.status is Status.OK, row.error
    assert row.friend_names == ("d1", "d2", "d3")
    assert row.friend_ids == ("11", "12", "13")
    assert row.pages == 2


async def test_a_list_of_one_page_whole_keeps_the_parsers_joined_text(upstream: str) -> None:
    row = await _collect(upstream, "x-api", User("8", "cy"))
    assert row.friend_names == ("d1", "d2", "d3", "d4")
    assert row.joined == ("d1\nd2\nd3\nd4", "11\n12\n13\n14")


@pytest.mark.parametrize(
    ("user_id", "max_friends", "names"),
    [
        ("1", None, ("d1", "d2", "d3")),  # two pages
        ("9", None, ("d1", "d2", "d3")),  # one page, a friend listed twice
        ("8", 3, ("d1", "d2", "d3")),  # one page, cut at max_friends
    ],
)
async def test_a_list_other_than_one_page_whole_carries_no_joined_text(
    upstream: str, user_id: str, max_friends: int | None, names: tuple[str, ...]
) -> None:
    row = await _collect(upstream, "x-api", User(user_id, "cy"), max_friends)
    assert row.friend_names == names
    assert row.joined is None


async def test_pages_repeating_the_same_names_under_fresh_cursors_fail_naming_the_loop(
    upstream: str,
) -> None:
    row = await _collect(upstream, "x-api", User("2", "bob"))
    assert row.status is Status.FAILED
    assert row.error is not None
    assert "page 2 added no new friend" in row.error
    assert "the upstream is looping" in row.error
    assert row.pages == 2
    assert row.friend_names == ()


async def test_a_name_only_site_looping_under_fresh_cursors_fails_too(upstream: str) -> None:
    row = await _collect(upstream, "twitter-mobile", User("3", "ada_example"))
    assert row.status is Status.FAILED
    assert row.error is not None
    assert "page 2 added no new friend (all 2 already listed)" in row.error


@pytest.mark.parametrize(
    ("source", "user"),
    [
        ("twitter-mobile", User("4", "ghost_name")),
        ("mastodon", User("5", "109302436954721982@mastodon.example")),
    ],
)
async def test_a_generic_404_fails_the_user_for_a_retry_and_is_never_not_found(
    upstream: str, source: str, user: User
) -> None:
    row = await _collect(upstream, source, user)
    assert row.status is Status.FAILED  # --retry-failed retries it; not_found never is
    assert row.error is not None
    assert row.error.startswith("http_404: ")


# -- what the circuit breaker is told --------------------------------------------------


async def test_outcomes_name_upstream_wide_failures_and_only_those(upstream: str) -> None:
    from friendscrape.core.breaker import Failure  # noqa: PLC0415 - new with the breaker

    port = test_utils.unused_port()  # bound, then closed: nothing listens there
    closed = f"http://127.0.0.1:{port}"
    async with HttpClient(http_config(Settings(fetch_attempts=1))) as http:
        refused = await _collector(closed, "twitter-mobile", http).collect_outcome(User("6", "ada"))
        generic = await _collector(upstream, "twitter-mobile", http).collect_outcome(
            User("7", "ghost_name")
        )
        looping = await _collector(upstream, "x-api", http).collect_outcome(User("2", "bob"))
        fine = await _collector(upstream, "x-api", http).collect_outcome(User("1", "ada"))
    assert refused.failure == Failure("connect", f"{closed}/ada/following")
    assert generic.failure == Failure("http_404", f"{upstream}/ghost_name/following")
    # The upstream answered these: whatever their status, they say it is up.
    assert looping.result.status is Status.FAILED
    assert looping.failure is None
    assert fine.failure is None
