"""Tests of the x-api, bluesky and mastodon sources: user checks, URLs, statuses, and whole
collections against the simulator serving each platform's format on a local port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.core.assemble import collect_config, http_config
from friendscrape.core.collect import Collector
from friendscrape.core.counters import RunCounters
from friendscrape.errors import RunAbortedError
from friendscrape.fetch.http import HttpClient
from friendscrape.fetch.wire import RawResponse
from friendscrape.models import Status, User
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.simulator import bluesky as sim_bluesky
from friendscrape.simulator import mastodon as sim_mastodon
from friendscrape.simulator import x_api as sim_x_api
from friendscrape.simulator.graph import SimAccount, SyntheticGraph
from friendscrape.sources import SOURCE_NAMES, make_source
from friendscrape.sources.base import Source
from friendscrape.sources.bluesky import BlueskySource
from friendscrape.sources.mastodon import MastodonSource, parse_account
from friendscrape.sources.x_api import CredentialsRejectedError, XApiSource

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


def test_every_source_is_named_and_built_from_settings() -> None:
    assert SOURCE_NAMES == ("twitter-mobile", "x-api", "bluesky", "mastodon")
    for name, kind in (("x-api", XApiSource), ("bluesky", BlueskySource)):
        source = make_source(source_config(Settings(source=name, base_url="http://127.0.0.1:9/")))
        assert isinstance(source, kind)
        assert source.name == name
        assert source.base_url == "http://127.0.0.1:9"
    mastodon = make_source(source_config(Settings(source="mastodon")))
    assert isinstance(mastodon, MastodonSource)
    assert mastodon.base_url is None


# -- x-api -------------------------------------------------------------------------------


def test_x_api_asks_by_numeric_id_a_thousand_a_page() -> None:
    source = XApiSource()
    user = User("783214", "X")
    assert source.check_user(user) is None
    first = source.page_request(user, None)
    assert first.url == "https://api.x.com/2/users/783214/following?max_results=1000"
    assert "authorization" not in {k.lower() for k in first.headers}
    later = source.page_request(user, "DFE/+=")
    assert later.url.endswith("max_results=1000&pagination_token=DFE%2F%2B%3D")


@pytest.mark.parametrize("user_id", ["", "12 3", "0x-10", "../1", "1" * 21, "a" * 16])
def test_x_api_refuses_what_is_neither_a_user_id_nor_a_username(user_id: str) -> None:
    source = XApiSource()
    user = User(user_id, "someone")
    reason = source.check_user(user)
    assert reason is not None
    assert "numeric X user id nor a username" in reason
    assert not source.needs_lookup(user)
    with pytest.raises(ValueError, match="numeric X user id"):
        source.page_request(user, None)


@pytest.mark.parametrize("status", [401, 403])
def test_x_api_refused_token_ends_the_run_not_the_user(status: int) -> None:
    body = b'{"title": "Unauthorized", "detail": "Unauthorized", "status": 401}'
    response = RawResponse("https://api.x.com/2/users/1/following", status, {}, body)
    with pytest.raises(CredentialsRejectedError) as err:
        XApiSource().parse(User("1", "a"), response)
    assert isinstance(err.value, RunAbortedError)
    assert f"HTTP {status}" in str(err.value)
    assert "FRIENDSCRAPE_X_BEARER_TOKENS" in str(err.value)


# -- bluesky -----------------------------------------------------------------------------


def test_bluesky_asks_the_public_appview_by_handle_or_did() -> None:
    source = BlueskySource()
    first = source.page_request(User("1", "alice.bsky.social"), None)
    assert first.url == (
        "https://public.api.bsky.app/xrpc/app.bsky.graph.getFollows"
        "?actor=alice.bsky.social&limit=100"
    )
    later = source.page_request(User("1", DID), "3kl2/yew")
    assert later.url.endswith(f"?actor={DID}&limit=100&cursor=3kl2%2Fyew")


@pytest.mark.parametrize("actor", ["alice", "alice_b.bsky.social", "did:plc:short", "a b.com"])
def test_bluesky_refuses_what_is_neither_handle_nor_did(actor: str) -> None:
    reason = BlueskySource().check_user(User("1", actor))
    assert reason is not None
    assert "not a Bluesky handle" in reason


# -- mastodon ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("109302436954721982@mastodon.social", ("109302436954721982", "mastodon.social")),
        ("1@Mastodon.Social", ("1", "mastodon.social")),
        ("https://mastodon.social/api/v1/accounts/42", ("42", "mastodon.social")),
        ("https://fosstodon.org/api/v1/accounts/42/following", ("42", "fosstodon.org")),
        ("https://akkoma.example/api/v1/accounts/AbC9d", ("AbC9d", "akkoma.example")),
    ],
)
def test_mastodon_accepts_id_at_instance_and_api_urls(ref: str, expected: tuple[str, str]) -> None:
    assert parse_account(ref) == expected
    assert MastodonSource().check_user(User("1", ref)) is None


@pytest.mark.parametrize(
    "ref",
    [
        "@1@mastodon.social",
        "alice@localhost",
        "https://mastodon.social/@alice/posts",
        "alice!@mastodon.social",
        "1@localhost",
        "1@",
        "1@mastodon.social/x",
        "https://mastodon.social/api/v1/accounts/1?x=1",
        "1",
    ],
)
def test_mastodon_refuses_what_is_neither_an_account_nor_a_handle(ref: str) -> None:
    reason = MastodonSource().check_user(User("1", ref))
    assert reason is not None
    assert "ID@INSTANCE" in reason


def test_mastodon_asks_the_users_instance_then_follows_the_link() -> None:
    source = MastodonSource()
    user = User("1", "42@fosstodon.org")
    first = source.page_request(user, None)
    assert first.url == "https://fosstodon.org/api/v1/accounts/42/following?limit=80"
    link = "https://fosstodon.org/api/v1/accounts/42/following?limit=80&max_id=7"
    assert source.page_request(user, link).url == link
    with pytest.raises(ValueError, match="not a URL on"):
        source.page_request(user, "https://evil.example/api/v1/accounts/42/following")


def test_mastodon_base_url_replaces_every_instance_but_names_stay() -> None:
    source = MastodonSource(base_url="http://127.0.0.1:9/")
    user = User("1", "42@fosstodon.org")
    assert source.page_request(user, None).url == (
        "http://127.0.0.1:9/api/v1/accounts/42/following?limit=80"
    )
    body = b'[{"id": "5", "acct": "bob", "username": "bob"}]'
    page = source.parse(user, RawResponse("http://127.0.0.1:9/x", 200, {}, body))
    assert page.names == ("bob@fosstodon.org",)
    assert page.ids == ("5@fosstodon.org",)


# -- whole collections against the simulator ---------------------------------------------

Truth = Callable[[SyntheticGraph, SimAccount], tuple[Status, list[str], list[str]]]
Importer = Callable[[SyntheticGraph, SimAccount], User]

FORMATS: dict[str, tuple[Importer, Truth]] = {
    "x-api": (lambda _g, a: sim_x_api.import_user(a), sim_x_api.expected),
    "bluesky": (sim_bluesky.import_user, sim_bluesky.expected),
    "mastodon": (lambda _g, a: sim_mastodon.import_user(a), sim_mastodon.expected),
}


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    # Small pages of big lists: every user walks several pages. A share of the page
    # requests fails once (500, 429) to check that retries keep lists whole.
    config = SimConfig(
        users=400, latency=0, mean_friends=120, error_rate=0.05, rate_limit_rate=0.05, retry_after=0
    )
    async with run_simulator(config) as running:
        yield running


def _settings(sim: RunningSimulator, source: str, **extra: object) -> Settings:
    return Settings(
        source=source,
        base_url=sim.base_url,
        retry_base_wait=0.001,
        retry_max_wait=0.01,
        fetch_attempts=10,
        max_friends=100_000,
        **extra,  # type: ignore[arg-type]
    )


async def _collect_all(
    sim: RunningSimulator, source_name: str, users: list[User], **extra: object
) -> list[tuple[User, object]]:
    settings = _settings(sim, source_name, **extra)
    source: Source = make_source(source_config(settings))
    out = []
    async with HttpClient(http_config(settings)) as http:
        collector = Collector(
            collect_config(settings), source, http, partition=1, stats=RunCounters()
        )
        for user in users:
            out.append((user, await collector.collect(user)))
    return out


@pytest.mark.parametrize("source_name", ["x-api", "bluesky", "mastodon"])
async def test_each_source_collects_the_simulators_truth(
    sim: RunningSimulator, source_name: str
) -> None:
    importer, truth = FORMATS[source_name]
    graph = sim.graph
    accounts = list(graph.accounts())
    results = await _collect_all(sim, source_name, [importer(graph, a) for a in accounts])
    seen_statuses = set()
    pages_walked = 0
    for account, (_user, result) in zip(accounts, results, strict=True):
        status, names, ids = truth(graph, account)
        assert result.status is status, (account, result.error)  # type: ignore[attr-defined]
        assert list(result.friend_names) == names  # type: ignore[attr-defined]
        assert list(result.friend_ids) == ids  # type: ignore[attr-defined]
        assert result.source == source_name  # type: ignore[attr-defined]
        seen_statuses.add(status)
        pages_walked = max(pages_walked, result.pages)  # type: ignore[attr-defined]
    assert Status.OK in seen_statuses
    assert Status.SUSPENDED in seen_statuses
    assert Status.NOT_FOUND in seen_statuses
    assert pages_walked >= 2


async def test_bluesky_states_of_accounts(sim: RunningSimulator) -> None:
    graph = sim.graph
    by_kind: dict[str, SimAccount] = {}
    for account in graph.accounts():
        by_kind.setdefault(account.kind.value, account)
    users = [sim_bluesky.import_user(graph, by_kind[k]) for k in ("protected", "invalid")]
    [(_, deactivated), (_, invalid)] = await _collect_all(sim, "bluesky", users)
    assert deactivated.status is Status.DEACTIVATED  # type: ignore[attr-defined]
    assert "AccountDeactivated" in (deactivated.error or "")  # type: ignore[attr-defined]
    assert invalid.status is Status.INVALID  # type: ignore[attr-defined]
    assert invalid.pages == 0  # type: ignore[attr-defined]


async def test_bluesky_collects_by_did_too(sim: RunningSimulator) -> None:
    graph = sim.graph
    account = next(a for a in graph.accounts() if a.kind.value == "ok" and a.following_count)
    did = sim_bluesky.did_of(graph, graph.index_of(account.screen_name) or 0)
    [(_, result)] = await _collect_all(sim, "bluesky", [User(account.user_id, did)])
    assert result.status is Status.OK  # type: ignore[attr-defined]
    assert list(result.friend_ids) == sim_bluesky.expected(graph, account)[2]  # type: ignore[attr-defined]


async def test_x_api_revoked_token_raises_once_with_no_token_in_it(sim: RunningSimulator) -> None:
    settings = _settings(sim, "x-api")
    source = make_source(source_config(settings))
    user = User(next(sim.graph.accounts()).user_id, "a")
    request = source.page_request(user, None)
    request = type(request)(request.url, {**request.headers, "Authorization": "Bearer revoked-1"})
    async with HttpClient(http_config(settings)) as http:
        response = await http.fetch(request)
    assert response.status == 401
    with pytest.raises(CredentialsRejectedError) as err:
        source.parse(user, response)
    assert "revoked-1" not in str(err.value)
