"""The HTTP client's retry, timeout, size-cap and redirect paths, faked at the HTTP seam."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from friendscrape.config import Settings
from friendscrape.core.assemble import http_config
from friendscrape.errors import PermanentFetchError, TransientFetchError
from friendscrape.fetch.http import FetchCounts, HttpClient, HttpConfig
from friendscrape.fetch.wire import PageRequest

URL = "http://upstream.test/ada/following"


def fast_config(**overrides: Any) -> HttpConfig:
    values: dict[str, Any] = {
        "retry_base_wait": 0.001,
        "retry_max_wait": 0.01,
        "fetch_attempts": 4,
        "fetch_retry_deadline": 30.0,
        "request_timeout": 5.0,
    }
    values.update(overrides)
    return http_config(Settings(**values))


async def test_retries_5xx_then_succeeds(mock_http: Any) -> None:
    mock_http.get(URL, status=503)
    mock_http.get(URL, status=500)
    mock_http.get(URL, status=200, body=b"<html>ok</html>")
    counts = FetchCounts()
    with capture_logs() as logs:
        async with HttpClient(fast_config(), counts=counts) as http:
            response = await http.fetch(PageRequest(URL))
    assert response.status == 200
    assert response.body == b"<html>ok</html>"
    assert counts.retries["server_error"] == 2
    assert counts.requests == 3
    retries = [e for e in logs if e["event"] == "fetch.retry"]
    assert [(e["attempt"], e["kind"], e["url"], e["log_level"]) for e in retries] == [
        (1, "server_error", URL, "debug"),
        (2, "server_error", URL, "debug"),
    ]


async def test_gives_up_after_attempts(mock_http: Any) -> None:
    for _ in range(4):
        mock_http.get(URL, status=502)
    async with HttpClient(fast_config()) as http:
        with pytest.raises(TransientFetchError) as info:
            await http.fetch(PageRequest(URL))
    assert info.value.kind == "server_error"
    assert "502" in str(info.value)


async def test_timeout_is_transient_and_retried(mock_http: Any) -> None:
    mock_http.get(URL, exception=TimeoutError())
    mock_http.get(URL, status=200, body=b"fine")
    counts = FetchCounts()
    async with HttpClient(fast_config(), counts=counts) as http:
        response = await http.fetch(PageRequest(URL))
    assert response.body == b"fine"
    assert counts.retries["timeout"] == 1


async def test_429_retry_after_is_honoured(mock_http: Any, monkeypatch: Any) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: Any) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    mock_http.get(URL, status=429, headers={"Retry-After": "7"})
    mock_http.get(URL, status=200, body=b"fine")
    async with HttpClient(fast_config(), counts=FetchCounts()) as http:
        response = await http.fetch(PageRequest(URL))
    assert response.status == 200
    assert waits
    assert waits[0] >= 7.0


async def test_connection_error_is_transient(mock_http: Any) -> None:
    for _ in range(4):
        mock_http.get(URL, exception=aiohttp.ServerDisconnectedError())
    async with HttpClient(fast_config()) as http:
        with pytest.raises(TransientFetchError) as info:
            await http.fetch(PageRequest(URL))
    assert info.value.kind == "connection"


async def test_404_is_returned_not_retried(mock_http: Any) -> None:
    mock_http.get(URL, status=404, body=b"gone")
    counts = FetchCounts()
    async with HttpClient(fast_config(), counts=counts) as http:
        response = await http.fetch(PageRequest(URL))
    assert response.status == 404
    assert counts.requests == 1


async def test_body_over_cap_is_refused(mock_http: Any) -> None:
    mock_http.get(URL, status=200, body=b"x" * 5000)
    async with HttpClient(fast_config(max_page_bytes=1024)) as http:
        with pytest.raises(PermanentFetchError, match="cap"):
            await http.fetch(PageRequest(URL))


async def test_redirect_to_another_host_is_not_followed(mock_http: Any) -> None:
    mock_http.get(URL, status=302, headers={"Location": "http://elsewhere.test/login"})
    async with HttpClient(fast_config()) as http:
        with pytest.raises(PermanentFetchError, match="another host"):
            await http.fetch(PageRequest(URL))


async def test_same_host_redirect_is_followed(mock_http: Any) -> None:
    mock_http.get(URL, status=301, headers={"Location": "/ada/following?x=1"})
    mock_http.get("http://upstream.test/ada/following?x=1", status=200, body=b"moved")
    async with HttpClient(fast_config()) as http:
        response = await http.fetch(PageRequest(URL))
    assert response.body == b"moved"
