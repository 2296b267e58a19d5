"""Hostile upstreams, second round: a local server in the test answers each source with
next links to another account, malformed redirects, repeated ids, a username look-up
that leaves a name out and a friend hidden in ``<noscript>``; the CLI runs as separate
processes against it, and the stored rows are checked (status, error, friends)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from friendscrape.models import User
from friendscrape.stores.sqlite import SqliteStore
from reliability.harness import results, run_cli, store_url

pytestmark = pytest.mark.slow

INSTANCE = "mastodon.example"
# Names only the other accounts' lists hold: none may appear in any stored row.
FOREIGN = ("other66", "other67", "follower99", "x_foreign", "foreign.example", "otheruser")


@dataclass
class Upstream:
    """The hostile answers of every source, on one local port."""

    base_url: str = ""
    usernames_asked: list[list[str]] = field(default_factory=list)
    bluesky_actors: list[str] = field(default_factory=list)


def _accounts(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"id": id_, "acct": acct, "username": acct} for id_, acct in pairs]


def _mastodon_routes(up: Upstream) -> list[web.RouteDef]:
    def link(path: str) -> dict[str, str]:
        return {"Link": f'<{up.base_url}{path}>; rel="next"'}

    async def following(request: web.Request) -> web.StreamResponse:
        account = request.match_info["id"]
        later = "max_id" in request.query
        page = _accounts(("1", "a1"), ("2", "a2"))
        if account == "2005":  # the case: the next link names account 2006
            return web.json_response(page, headers=link("/api/v1/accounts/2006/following?max_id=2"))
        if account == "2006":
            return web.json_response(_accounts(("66", "other66"), ("67", "other67")))
        if account == "2007":  # same account, another endpoint
            return web.json_response(page, headers=link("/api/v1/accounts/2007/followers?max_id=2"))
        if account == "2008":  # same path, a parameter that is not paging
            path = "/api/v1/accounts/2008/following?max_id=2&account_id=2006"
            return web.json_response(page, headers=link(path))
        if account == "2009":  # a next link that is not a URL
            return web.json_response(page, headers={"Link": '<http://[::1>; rel="next"'})
        if account == "2010":  # honest paging: limit and max_id change, nothing else
            if later:
                return web.json_response(_accounts(("3", "a3")))
            path = "/api/v1/accounts/2010/following?limit=80&max_id=2"
            return web.json_response(page, headers=link(path))
        if account == "2011":  # one id listed twice, under two accts
            return web.json_response(_accounts(("5", "dup"), ("5", "dup_renamed"), ("6", "b6")))
        if account == "2012":  # a redirect on the same host to another account's list
            raise web.HTTPFound("/api/v1/accounts/2006/following")
        bad = {"3001": "http://127.0.0.1:99999/x", "3002": "http://127.0.0.1:-1/x"}
        location = bad.get(account, "http://[::1")
        return web.Response(status=302, headers={"Location": location})

    async def followers(request: web.Request) -> web.Response:
        return web.json_response(_accounts(("99", "follower99")))

    return [
        web.get("/api/v1/accounts/{id}/following", following),
        web.get("/api/v1/accounts/{id}/followers", followers),
    ]


def _x_routes(up: Upstream) -> list[web.RouteDef]:
    def page(*items: tuple[str, str], token: str | None = None) -> web.Response:
        meta: dict[str, Any] = {"result_count": len(items)}
        if token is not None:
            meta["next_token"] = token
        data = [{"id": id_, "name": name, "username": name} for id_, name in items]
        return web.json_response({"data": data, "meta": meta})

    async def following(request: web.Request) -> web.StreamResponse:
        user = request.match_info["id"]
        token = request.query.get("pagination_token")
        if user == "4001":  # one id twice, with two usernames
            return page(("11", "aa"), ("11", "bb"), ("12", "cc"))
        if user == "4002":  # a same-host redirect to another account's list
            raise web.HTTPFound("/2/users/4099/following")
        if user == "4099":
            return page(("99", "x_foreign"))
        if user == "4003":
            return web.Response(status=302, headers={"Location": "http://127.0.0.1:99999/"})
        if user == "4004":  # a token that tries to name another account: stays a token
            if token is None:
                return page(("13", "dd"), token="t&user=4099/../4099")
            return page(("14", "ee"))
        # Users named by a username: 4101 alice, 4102 bobby.
        return page((f"2{user}", f"f{user}"))

    async def users_by(request: web.Request) -> web.Response:
        asked = request.query["usernames"].split(",")
        up.usernames_asked.append(asked)
        ids = {"alice": "4101", "bobby": "4102"}  # carol is left out of every answer
        data = [{"id": ids[n], "name": n, "username": n} for n in asked if n in ids]
        return web.json_response({"data": data})

    return [web.get("/2/users/by", users_by), web.get("/2/users/{id}/following", following)]


def _did(letter: str) -> str:
    return "did:plc:" + letter * 24


def _bluesky_routes(up: Upstream) -> list[web.RouteDef]:
    async def get_follows(request: web.Request) -> web.Response:
        actor = request.query["actor"]
        up.bluesky_actors.append(actor)
        cursor = request.query.get("cursor")
        subject = {"did": _did("s"), "handle": actor}
        doc: dict[str, Any] = {"subject": subject}
        if actor == "dup.bsky.example":  # one DID twice, under two handles
            doc["follows"] = [
                {"did": _did("a"), "handle": "a.bsky.example"},
                {"did": _did("a"), "handle": "b.bsky.example"},
                {"did": _did("c"), "handle": "c.bsky.example"},
            ]
        elif actor == "cursor.bsky.example" and cursor is None:
            doc["follows"] = [{"did": _did("d"), "handle": "d.bsky.example"}]
            doc["cursor"] = "x&actor=foreign.example"
        elif actor == "cursor.bsky.example":
            doc["follows"] = [{"did": _did("e"), "handle": "e.bsky.example"}]
        else:  # any other actor: what a request that lost its actor would get
            doc = {"subject": subject, "follows": [{"did": _did("f"), "handle": "foreign.example"}]}
        return web.json_response(doc)

    return [web.get("/xrpc/app.bsky.graph.getFollows", get_follows)]


def _item(name: str) -> str:
    return (
        '<table class="user-item"><tr><td class="info fifty screenname">'
        f'<a name="{name}"></a><a href="/{name}"><span class="username"><span>@</span>{name}'
        f'</span></a></td><td><form action="/i/guest/follow/{name}" method="post"></form>'
        "</td></tr></table>\n"
    )


def _mobile_page(owner: str, items: str, *, following: int, more: str = "") -> str:
    stats = (
        '<table class="profile-stats"><tr><td class="stat">'
        f'<a href="/{owner}/following"><div class="statnum">{following}</div>'
        '<div class="statlabel"> Following </div></a></td></tr></table>\n'
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>People followed</title></head>\n"
        f'<body class="users-following-page">{stats}<div class="user-list">\n{items}</div>\n'
        f"{more}</body>\n</html>\n"
    )


def _mobile_routes() -> list[web.RouteDef]:
    async def following(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "tm_noscript":  # the visible list says Following 1
            items = _item("vis_one") + "<noscript>" + _item("otheruser") + "</noscript>\n"
            body = _mobile_page(name, items, following=1)
        elif name == "tm_othernext" and "cursor" in request.query:
            # Walked on with the cursor of otheruser's list, the site answers with it.
            body = _mobile_page(name, _item("x_foreign"), following=2).replace(
                'class="profile-stats"', 'class="stats-gone"'
            )
        elif name == "tm_othernext":  # a next link to another account's following page
            more = (
                '<div class="w-button-more"><a href="/otheruser/following?cursor=22">'
                "Show more people</a></div>\n"
            )
            body = _mobile_page(name, _item("p1_friend"), following=2, more=more)
        elif name == "otheruser":
            body = _mobile_page(name, _item("x_foreign"), following=1)
        else:  # tm_badredir
            return web.Response(status=302, headers={"Location": "http://[::1"})
        return web.Response(text=body, content_type="text/html")

    return [web.get("/{name}/following", following)]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.add_routes([*_x_routes(up), *_mastodon_routes(up), *_bluesky_routes(up), *_mobile_routes()])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    up.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield up
    finally:
        await runner.cleanup()


async def _job(
    tmp_path: Path, up: Upstream, source: str, users: list[tuple[str, str]], *extra: str
) -> dict[str, dict[str, Any]]:
    """A store of ``users`` (user_id, screen_name) in one partition, whose run against
    ``up`` is a separate process; the stored rows by user_id. Checked for every run: no
    traceback, no internal error, and no name of another account's list in any row."""
    db = tmp_path / "job.db"
    if not db.exists():
        store = SqliteStore(db)
        await store.open()
        try:
            await store.import_users([User(uid, name) for uid, name in users])
            await store.plan_partitions(1)
        finally:
            await store.close()
    args = ["run", "--store", store_url(db), "--partition", "1", "--source", source]
    code, run = await run_cli([*args, "--base-url", up.base_url, *extra])
    assert code == 0, run.tail()
    assert "Traceback" not in run.stderr, run.stderr
    rows = results(db)
    assert len(rows) == len(users), run.tail()
    for row in rows.values():
        assert "internal error" not in (row["error"] or ""), row
        stored = json.dumps([row["friend_names"], row["friend_ids"]])
        assert not any(name in stored for name in FOREIGN), row
    assert not run.named("collect.crashed"), run.named("collect.crashed")
    return rows


def _failed(row: dict[str, Any], *says: str) -> None:
    assert row["status"] == "failed", row
    assert row["friend_names"] == [], row
    for text in says:
        assert text in (row["error"] or ""), row["error"]


def _ok(row: dict[str, Any], names: list[str], ids: list[str] | None = None) -> None:
    assert row["status"] == "ok", row
    assert row["friend_names"] == names, row
    if ids is not None:
        assert row["friend_ids"] == ids, row


def _mastodon(*ids: str) -> list[tuple[str, str]]:
    return [(f"m{i}", f"{i}@{INSTANCE}") for i in ids]


def _m(*names: str) -> list[str]:
    return [f"{name}@{INSTANCE}" for name in names]


ANOTHER = "next page link names another account or endpoint"


@pytest.mark.parametrize("source", ["mastodon", "x-api", "twitter-mobile", "bluesky"])
async def test_a_next_page_or_redirect_to_another_account_is_never_saved(
    source: str, tmp_path: Path, upstream: Upstream
) -> None:
    if source == "mastodon":
        rows = await _job(tmp_path, upstream, source, _mastodon("2005", "2007", "2008", "2010"))
        _failed(rows["m2005"], ANOTHER, "'/api/v1/accounts/2006/following'); not followed")
        _failed(rows["m2007"], ANOTHER, "'/api/v1/accounts/2007/followers'")
        _failed(rows["m2008"], "next page link names other query parameters", "account_id=2006")
        _ok(rows["m2010"], _m("a1", "a2", "a3"))  # limit and max_id may change
    elif source == "x-api":
        rows = await _job(tmp_path, upstream, source, [("4002", "x4002"), ("4004", "x4004")])
        _failed(rows["4002"], "redirected to another account or endpoint", "/2/users/4099/")
        _ok(rows["4004"], ["dd", "ee"])  # a token naming another account stays a token
    elif source == "twitter-mobile":
        rows = await _job(tmp_path, upstream, source, [("t2", "tm_othernext")])
        _failed(rows["t2"], ANOTHER, "'/otheruser/following'")
    else:
        rows = await _job(tmp_path, upstream, source, [("b2", "cursor.bsky.example")])
        _ok(rows["b2"], ["d.bsky.example", "e.bsky.example"])
        assert set(upstream.bluesky_actors) == {"cursor.bsky.example"}


@pytest.mark.parametrize("source", ["mastodon", "x-api", "twitter-mobile"])
async def test_a_malformed_redirect_or_next_link_fails_the_user_without_a_traceback(
    source: str, tmp_path: Path, upstream: Upstream
) -> None:
    invalid = "fetch: redirect to an invalid URL"
    if source == "mastodon":
        rows = await _job(tmp_path, upstream, source, _mastodon("3001", "3002", "3003", "2009"))
        _failed(rows["m3001"], invalid, "'http://127.0.0.1:99999/x'", "Port out of range")
        _failed(rows["m3002"], invalid, "'http://127.0.0.1:-1/x'")
        _failed(rows["m3003"], invalid, "'http://[::1'", "Invalid IPv6 URL")
        _failed(rows["m2009"], "parse: next link is not a valid URL: 'http://[::1'")
    elif source == "x-api":
        rows = await _job(tmp_path, upstream, source, [("4003", "x4003")])
        _failed(rows["4003"], invalid, "Port out of range")
    else:
        rows = await _job(tmp_path, upstream, source, [("t3", "tm_badredir")])
        _failed(rows["t3"], invalid, "Invalid IPv6 URL")


@pytest.mark.parametrize("source", ["mastodon", "x-api", "bluesky"])
async def test_an_account_listed_twice_under_two_names_is_saved_once(
    source: str, tmp_path: Path, upstream: Upstream
) -> None:
    if source == "mastodon":
        rows = await _job(tmp_path, upstream, source, _mastodon("2011"))
        _ok(rows["m2011"], _m("dup", "b6"), [f"5@{INSTANCE}", f"6@{INSTANCE}"])
    elif source == "x-api":
        rows = await _job(tmp_path, upstream, source, [("4001", "x4001")])
        _ok(rows["4001"], ["aa", "cc"], ["11", "12"])
    else:
        rows = await _job(tmp_path, upstream, source, [("b1", "dup.bsky.example")])
        _ok(rows["b1"], ["a.bsky.example", "c.bsky.example"], [_did("a"), _did("c")])


async def test_a_username_the_look_up_leaves_out_fails_alone(
    tmp_path: Path, upstream: Upstream
) -> None:
    users = [(name, name) for name in ("alice", "bobby", "carol")]
    rows = await _job(tmp_path, upstream, "x-api", users)
    assert upstream.usernames_asked == [["alice", "bobby", "carol"]]
    _ok(rows["alice"], ["f4101"])
    _ok(rows["bobby"], ["f4102"])
    _failed(rows["carol"], "lookup: the answer says nothing of username 'carol'")

    # --retry-failed looks up carol alone, and leaves alice's and bobby's rows alone.
    retried = await _job(tmp_path, upstream, "x-api", users, "--retry-failed")
    assert upstream.usernames_asked[1:] == [["carol"]]
    assert retried["alice"] == rows["alice"]
    assert retried["bobby"] == rows["bobby"]
    _failed(retried["carol"], "the answer says nothing of username 'carol'")


async def test_a_friend_inside_noscript_is_not_read(tmp_path: Path, upstream: Upstream) -> None:
    rows = await _job(tmp_path, upstream, "twitter-mobile", [("t1", "tm_noscript")])
    _ok(rows["t1"], ["vis_one"])
    assert rows["t1"]["following_count"] == 1
