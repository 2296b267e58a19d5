"""The served pages: the mobile site's markup, pagination, account states, truth, stats."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from selectolax.lexbor import LexborHTMLParser

from friendscrape.errors import ParseError
from friendscrape.models import Status
from friendscrape.parse.twitter_mobile import parse_following_page
from friendscrape.simulator import AccountKind, RunningSimulator, SimAccount


def first_of(sim: RunningSimulator, kind: AccountKind, min_count: int = 0) -> SimAccount:
    return next(
        a for a in sim.graph.accounts() if a.kind is kind and a.following_count >= min_count
    )


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as response:
        return response.status, await response.text()


def names_of(tree: LexborHTMLParser) -> list[str]:
    names = []
    for item in tree.css("table.user-item"):
        anchor = item.css_first("td.screenname a")
        assert anchor is not None
        name = anchor.attributes["name"]
        assert name is not None
        names.append(name)
    return names


def next_cursor(tree: LexborHTMLParser) -> str | None:
    link = tree.css_first("div.w-button-more a")
    if link is None:
        return None
    href = link.attributes["href"] or ""
    return parse_qs(urlsplit(href).query)["cursor"][0]


async def walk(http: aiohttp.ClientSession, sim: RunningSimulator, name: str) -> list[str]:
    names: list[str] = []
    cursor = None
    for _ in range(1000):
        status, html = await get(http, sim.following_url(name, cursor))
        assert status == 200
        tree = LexborHTMLParser(html)
        names += names_of(tree)
        cursor = next_cursor(tree)
        if cursor is None:
            return names
    raise AssertionError("pagination did not end")


async def test_first_page_has_twenty_users_a_next_link_and_the_count(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    account = first_of(sim, AccountKind.OK, min_count=1000)
    status, html = await get(http, sim.following_url(account.screen_name))
    assert status == 200
    tree = LexborHTMLParser(html)
    assert len(tree.css("table.user-item")) == 20
    names = names_of(tree)
    assert names == sim.graph.friends(account.screen_name)[:20]
    for item, name in zip(tree.css("table.user-item"), names, strict=True):
        username = item.css_first("span.username")
        assert username is not None
        assert username.text() == f"@{name}"
        form = item.css_first('form[action^="/i/guest/follow/"]')
        assert form is not None
        assert form.attributes["action"] == f"/i/guest/follow/{name}"
    link = tree.css_first("div.w-button-more a")
    assert link is not None
    href = link.attributes["href"] or ""
    assert href.startswith(f"/{account.screen_name}/following?cursor=")
    cursor = next_cursor(tree)
    assert cursor is not None
    assert cursor.isdigit()
    assert len(cursor) >= 18
    stat = next(
        cell
        for cell in tree.css("table.profile-stats td")
        if (cell.css_first("a").attributes["href"] or "").endswith("/following")  # type: ignore[union-attr]
    )
    statnum = stat.css_first("div.statnum")
    assert statnum is not None
    assert statnum.text() == f"{account.following_count:,}"
    assert "," in statnum.text()


async def test_walking_every_page_gives_exactly_the_truth(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    ok = [a for a in sim.graph.accounts() if a.kind is AccountKind.OK]
    picks = [
        next(a for a in ok if a.following_count == 0),
        next(a for a in ok if 0 < a.following_count < 40),
        next(a for a in ok if a.following_count > 0 and a.following_count % 20 == 0),
        next(a for a in ok if a.following_count > 1000),
        *ok[:5],
    ]
    for account in picks:
        walked = await walk(http, sim, account.screen_name)
        assert walked == sim.graph.friends(account.screen_name)
        assert len(walked) == account.following_count


async def test_the_project_parser_reads_every_page(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    account = first_of(sim, AccountKind.OK, min_count=150)
    names: list[str] = []
    counts: list[int | None] = []
    url = sim.following_url(account.screen_name)
    while True:
        async with http.get(url) as response:
            page = parse_following_page(
                await response.read(), status=response.status, url=url, owner=account.screen_name
            )
        assert page.status is Status.OK
        names += page.names
        counts.append(page.following_count)
        if page.next_cursor is None:
            break
        url = sim.following_url(account.screen_name, page.next_cursor)
    assert names == sim.graph.friends(account.screen_name)
    assert counts[0] == account.following_count
    assert counts[1:] == [None] * (len(counts) - 1)
    for kind, status in [
        (AccountKind.PROTECTED, Status.PROTECTED),
        (AccountKind.SUSPENDED, Status.SUSPENDED),
        (AccountKind.NOT_FOUND, Status.NOT_FOUND),
    ]:
        url = sim.following_url(first_of(sim, kind).screen_name)
        async with http.get(url) as response:
            page = parse_following_page(await response.read(), status=response.status, url=url)
        assert page.status is status


async def test_account_states(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    protected = first_of(sim, AccountKind.PROTECTED)
    status, html = await get(http, sim.following_url(protected.screen_name))
    assert status == 200
    tree = LexborHTMLParser(html)
    assert tree.css_first("div.protected") is not None
    assert not tree.css("table.user-item")

    suspended = first_of(sim, AccountKind.SUSPENDED)
    status, html = await get(http, sim.following_url(suspended.screen_name))
    assert status == 200
    body = LexborHTMLParser(html).body
    assert body is not None
    assert "account-suspended-page" in (body.attributes["class"] or "")

    for name in [first_of(sim, AccountKind.NOT_FOUND).screen_name, "nobody_at_all"]:
        status, html = await get(http, sim.following_url(name))
        assert status == 404
        assert "doesn't exist" in html
    status, _ = await get(http, f"{sim.base_url}/some/other/path")
    assert status == 404


async def test_bios_mention_accounts_that_are_not_friends(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    account = first_of(sim, AccountKind.OK, min_count=300)
    friends = set(sim.graph.friends(account.screen_name))
    mentioned: set[str] = set()
    raw = ""
    cursor = None
    for _ in range(8):
        _, html = await get(http, sim.following_url(account.screen_name, cursor))
        raw += html
        tree = LexborHTMLParser(html)
        for bio in tree.css("div.bio"):
            mentioned.update(re.findall(r"@([A-Za-z0-9_]{1,15})", bio.text()))
        cursor = next_cursor(tree)
    assert mentioned
    assert not mentioned & friends
    assert 'class="twitter-atreply' in raw
    assert re.search(r'class="fullname">[^<]*&(?:amp|lt|quot|#x?[0-9A-Fa-f]+);', raw)


async def test_cursors_the_site_never_gave_are_refused(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    first, second = [a for a in sim.graph.accounts() if a.following_count > 45][:2]
    own = sim.site.cursor(first, 1)
    assert (await get(http, sim.following_url(first.screen_name, own)))[0] == 200
    for bad in ["20", "1", "", "abc", sim.site.cursor(second, 1), str(int(own) + 1)]:
        status, _ = await get(http, sim.following_url(first.screen_name, bad))
        assert status == 400, bad


async def test_hostile_pages(http: aiohttp.ClientSession, sim: RunningSimulator) -> None:
    graph = sim.graph

    truncated = graph.account("zz_truncated")
    assert truncated is not None
    _, html = await get(http, sim.following_url(truncated.screen_name))
    cursor = next_cursor(LexborHTMLParser(html))
    status, html = await get(http, sim.following_url(truncated.screen_name, cursor))
    assert status == 200
    assert "</html>" not in html
    assert re.search(r"<[^>]*\Z", html), "cut inside a tag"

    loop = graph.account("zz_cursor_loop")
    assert loop is not None
    seen: list[str | None] = [None]
    for _ in range(4):
        _, html = await get(http, sim.following_url(loop.screen_name, seen[-1]))
        seen.append(next_cursor(LexborHTMLParser(html)))
    assert seen[3] == seen[1]
    assert seen[4] == seen[2]

    empty = graph.account("zz_empty_pages")
    assert empty is not None
    cursor = None
    for _ in range(3):
        status, html = await get(http, sim.following_url(empty.screen_name, cursor))
        tree = LexborHTMLParser(html)
        assert status == 200
        assert not tree.css("table.user-item")
        new_cursor = next_cursor(tree)
        assert new_cursor is not None
        assert new_cursor != cursor
        cursor = new_cursor

    async with http.get(sim.following_url("zz_huge_page")) as response:
        assert response.status == 200
        assert len(await response.read()) >= 5 * 1024 * 1024

    async with http.get(sim.following_url("zz_redirect"), allow_redirects=False) as response:
        assert response.status == 302
        location = response.headers["Location"]
        assert urlsplit(location).netloc != urlsplit(sim.base_url).netloc

    status, html = await get(http, sim.following_url("zz_login_wall"))
    assert status == 200
    with pytest.raises(ParseError):
        parse_following_page(html.encode(), status=status, url="x")

    for name in ["zz_truncated", "zz_cursor_loop", "zz_empty_pages", "zz_huge_page"]:
        assert graph.expected(name)["status"] == "failed"


async def test_truth_and_stats_over_http(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    account = first_of(sim, AccountKind.OK, min_count=30)
    async with http.get(sim.truth_url(account.screen_name)) as response:
        assert await response.json() == sim.graph.expected(account.screen_name)
    async with http.get(sim.truth_url("zz_redirect")) as response:
        assert (await response.json())["status"] == "failed"

    await walk(http, sim, account.screen_name)
    pages = -(-account.following_count // 20)
    await get(http, sim.following_url("nobody_at_all"))
    async with http.get(sim.stats_url) as response:
        stats = await response.json()
    assert stats["total"] == pages + 1
    assert stats["pages"] == pages + 1
    assert stats["by_kind"] == {"first_page": 2, "next_page": pages - 1}
    assert stats["by_status"] == {"200": pages, "404": 1}
    assert stats["control"] == 3
    assert sim.stats.total == pages + 1
