"""Credentials in the base URL: taken out of it by the settings, sent as Basic auth to its
origin alone (a real local server reads the header), and known in every form to the
redactors of results and logs."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from friendscrape.config import Settings
from friendscrape.configparts import source_config
from friendscrape.core.assemble import http_config
from friendscrape.core.redaction import Redactor, secret_values
from friendscrape.errors import UsageError
from friendscrape.fetch.http import HttpClient
from friendscrape.fetch.wire import PageRequest
from friendscrape.sources import make_source
from friendscrape.urlauth import shown, split_credentials

BASE = "http://us%40er:p%3Aw%2F1@127.0.0.1:9/site"
BASIC = base64.b64encode(b"us@er:p:w/1").decode()


def test_settings_keep_the_url_without_its_credentials() -> None:
    settings = Settings(base_url=BASE)
    assert settings.base_url == "http://127.0.0.1:9/site"
    credentials = settings.base_url_credentials
    assert credentials is not None
    assert (credentials.user, credentials.password) == ("us@er", "p:w/1")
    assert "p:w" not in repr(credentials)
    assert "p%3A" not in repr(settings)
    # A copy naming another base URL (the demo's simulator) does not send them there.
    other = settings.model_copy(update={"base_url": "http://127.0.0.1:8"})
    assert other.base_url_credentials is None
    assert Settings(base_url="http://127.0.0.1:9").base_url_credentials is None


def test_every_form_of_the_secret_is_redacted() -> None:
    settings = Settings(base_url=BASE)
    secrets = secret_values(settings.credentials())
    for form in ("p:w/1", "p%3Aw%2F1", "us@er:p:w/1", "us%40er:p%3Aw%2F1", BASIC):
        assert form in secrets, form
    text = f"echoed p:w/1, p%3Aw%2F1 and us%40er:p%3Aw%2F1 and Basic {BASIC}"
    cleaned = Redactor.of(settings.credentials()).text(text)
    assert "p:w" not in cleaned
    assert "p%3A" not in cleaned
    assert BASIC not in cleaned
    assert "[redacted base_url password]" in cleaned


def test_a_user_name_alone_is_the_secret() -> None:
    _, credentials = split_credentials("https://t0ken@host.example")
    assert credentials is not None
    assert "t0ken" in credentials.secrets()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:pw@h:1/x", "http://***@h:1/x"),
        ("http://h/@alice", "http://h/@alice"),
        ("http://u:pw@[::1", "***@[::1"),
        ("http:/u:pw@h", "***@h"),
    ],
)
def test_a_url_shown_in_a_message_hides_its_credentials(url: str, expected: str) -> None:
    assert shown(url) == expected


def test_x_api_refuses_a_base_url_with_credentials() -> None:
    with pytest.raises(UsageError, match="x-api cannot send"):
        make_source(source_config(Settings(source="x-api", base_url=BASE)))


@asynccontextmanager
async def _echo_server() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A server that records each request's Authorization header: (base URL, headers)."""
    seen: list[str | None] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def test_basic_auth_goes_to_the_base_urls_origin_only() -> None:
    async with _echo_server() as (base, seen), _echo_server() as (other, other_seen):
        settings = Settings(base_url=base.replace("127.0.0.1", "us%40er:p%3Aw%2F1@127.0.0.1"))
        async with HttpClient(http_config(settings)) as http:
            await http.get_once(PageRequest(url=f"{base}/a/following"))
            await http.get_once(PageRequest(url=f"{other}/b"))
            own = PageRequest(url=f"{base}/c", headers={"Authorization": "Bearer tok"})
            await http.get_once(own)
    assert seen == [f"Basic {BASIC}", "Bearer tok"]  # a request's own header wins
    assert other_seen == [None]
