"""Credential pools: each token has its own window, and no token is ever shown."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from structlog.testing import capture_logs
from yarl import URL

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.core.assemble import http_config, limiter_config
from friendscrape.credentials import Credentials, parse_tokens
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.http import HttpClient
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig, build_limiter
from friendscrape.fetch.ratelimit_headers import RateLimitInfo
from friendscrape.fetch.wire import PageRequest
from friendscrape.sources import make_source

SECRET_A = "AAAA-secret-token-one"
SECRET_B = "BBBB-secret-token-two"


def test_parse_tokens_splits_and_drops_blanks() -> None:
    assert parse_tokens(SecretStr(f" {SECRET_A} ,, {SECRET_B} ")) == [SECRET_A, SECRET_B]
    assert parse_tokens(None) == []


def test_settings_parse_their_secrets_once_into_credentials() -> None:
    settings = Settings(
        x_bearer_tokens=SecretStr(f" {SECRET_A} ,, {SECRET_B} "),
        base_url="http://user:pass-word@127.0.0.1:9",
    )
    credentials = settings.credentials()
    assert credentials.tokens == (SECRET_A, SECRET_B)
    assert "pass-word" in credentials.base_url
    for secret in (SECRET_A, SECRET_B, "pass-word"):
        assert secret not in repr(credentials)
    assert Settings().credentials() == Credentials()


def test_reprs_show_fingerprints_only() -> None:
    pool = CredentialPool([SECRET_A, SECRET_B])
    credential, _ = pool.choose(0.0)
    shown = f"{pool!r} {credential!r} {credential}"
    assert "token#1" in shown
    assert SECRET_A not in shown
    assert SECRET_B not in shown
    assert credential.headers() == {"Authorization": f"Bearer {SECRET_A}"}


def test_requests_move_to_a_credential_with_quota_left() -> None:
    pool = CredentialPool([SECRET_A, SECRET_B])
    first = pool.quota("token#1")
    seq = first.take(0.0)
    first.learn(RateLimitInfo(limit=2, remaining=0, reset_after=30.0), 0.0, seq=seq)
    credential, wait = pool.choose(1.0)
    assert credential.fingerprint == "token#2"
    assert wait == 0.0
    assert not pool.all_spent(1.0)


def test_when_all_are_spent_the_pool_waits_for_the_earliest_reset() -> None:
    pool = CredentialPool([SECRET_A, SECRET_B])
    pool.quota("token#1").exhaust(0.0, 90.0)
    pool.quota("token#2").exhaust(0.0, 30.0)
    assert pool.all_spent(10.0)
    credential, wait = pool.choose(10.0)
    assert credential.fingerprint == "token#2"
    assert 20.0 < wait < 21.0
    # Past its reset the window is full again.
    assert not pool.all_spent(31.0)


def test_build_limiter_attaches_the_pool_to_the_hosts_the_source_names() -> None:
    settings = Settings(
        source="x-api",
        base_url="http://127.0.0.1:9/2",
        x_bearer_tokens=SecretStr(f"{SECRET_A},{SECRET_B}"),
    )
    source = make_source(source_config(settings))
    assert source.credential_hosts == ("api.x.com", "api.twitter.com", "127.0.0.1")
    limiter = build_limiter(
        limiter_config(settings),
        credential_hosts=source.credential_hosts,
        tokens=settings.credentials().tokens,
        lag=lambda: 0.0,
    )
    assert SECRET_A not in repr(limiter)
    assert "127.0.0.1" in repr(limiter)
    assert "api.x.com" in repr(limiter)


def test_public_sources_name_no_credential_hosts() -> None:
    for name in ("twitter-mobile", "bluesky", "mastodon"):
        assert make_source(source_config(Settings(source=name))).credential_hosts == ()
    # The X API's own hosts once, whatever the base URL says.
    assert make_source(source_config(Settings(source="x-api"))).credential_hosts == (
        "api.x.com",
        "api.twitter.com",
    )


async def test_http_client_sends_the_bearer_and_learns_that_tokens_window(
    mock_http: Any,
) -> None:
    url = "http://api.test/2/users/1/following"
    mock_http.get(
        url,
        status=200,
        body=b"{}",
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": "9999999999"},
    )
    mock_http.get(url, status=200, body=b"{}")
    pool = CredentialPool([SECRET_A, SECRET_B])
    limiter = HostLimiter(LimiterConfig(), pools={"api.test": pool})
    with capture_logs() as logs:
        async with HttpClient(http_config(Settings()), limiter=limiter) as http:
            await http.fetch(PageRequest(url))
            await http.fetch(PageRequest(url))
    sent = [
        call.kwargs["headers"]["Authorization"] for call in mock_http.requests[("GET", URL(url))]
    ]
    # token#1's window is spent after the first response, so the second goes to token#2.
    assert sent == [f"Bearer {SECRET_A}", f"Bearer {SECRET_B}"]
    assert pool.quota("token#1").remaining == 0
    assert SECRET_A not in repr(logs)
    assert SECRET_B not in repr(logs)
