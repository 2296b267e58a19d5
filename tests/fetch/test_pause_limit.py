"""The longest pause: an upstream asking for more than ``max_pause`` ends the run, and no
header value makes the limiter overflow, pause forever or write a non-JSON log line."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from friendscrape import logs
from friendscrape.errors import PauseTooLongError
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig

HOST = "upstream.test"


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def strict_json(line: str) -> dict[str, Any]:
    """One log line, parsed as JSON proper: Python's json.loads takes NaN and Infinity."""
    event: dict[str, Any] = json.loads(line, parse_constant=_reject_constant)
    return event


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """friendscrape's own JSON logging, written to a buffer."""
    out = io.StringIO()
    logs.configure(fmt="json", level="debug", stream=out)
    try:
        yield out
    finally:
        structlog.reset_defaults()


async def others_ran() -> None:
    """Return once every task scheduled before this call has taken its first step (the
    loop runs tasks in FIFO order): a waiter still not done by then is waiting."""
    ran = asyncio.Event()

    async def mark() -> None:
        ran.set()

    marker = asyncio.create_task(mark())
    await ran.wait()
    await marker


async def rate_limited(limiter: HostLimiter, headers: dict[str, str]) -> None:
    permit = await limiter.acquire(HOST)
    limiter.release(HOST, status=429, headers=headers, latency=0.01, permit=permit)


async def test_a_retry_after_over_the_maximum_ends_the_run_at_once() -> None:
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    with pytest.raises(PauseTooLongError) as raised:
        await rate_limited(limiter, {"retry-after": "86400"})
    assert raised.value.host == HOST
    assert raised.value.pause == 86400
    assert raised.value.exit_code == 4
    assert str(raised.value) == (
        "upstream.test asked to pause 86400 s (over the maximum of 900 s, FRIENDSCRAPE_MAX_PAUSE)"
    )
    assert HOST not in limiter.paused()  # not paused: refused
    # Every later request to the host is refused too, without waiting.
    async with asyncio.timeout(1):
        with pytest.raises(PauseTooLongError):
            await limiter.acquire(HOST)


async def test_requests_waiting_on_the_host_are_refused_too() -> None:
    limiter = HostLimiter(LimiterConfig(max_pause=900, concurrency=1, adaptive=False))
    first = await limiter.acquire(HOST)
    waiting = asyncio.create_task(limiter.acquire(HOST))  # concurrency 1: waits for `first`
    await others_ran()
    assert not waiting.done()
    with pytest.raises(PauseTooLongError):
        limiter.release(
            HOST, status=429, headers={"retry-after": "3600"}, latency=0.01, permit=first
        )
    async with asyncio.timeout(1):
        with pytest.raises(PauseTooLongError):
            await waiting


async def test_a_pause_of_exactly_the_maximum_is_waited() -> None:
    # An X API window is 15 minutes: a full one must fit the default maximum.
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    await rate_limited(limiter, {"retry-after": "900"})
    assert limiter.paused()[HOST] > time.monotonic() + 890


async def test_a_spent_window_resetting_after_the_maximum_ends_the_run() -> None:
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    permit = await limiter.acquire(HOST)
    reset = int(time.time()) + 7200
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    limiter.release(HOST, status=200, headers=headers, latency=0.01, permit=permit)
    async with asyncio.timeout(1):
        with pytest.raises(PauseTooLongError) as raised:
            await limiter.acquire(HOST)
    assert 7100 < raised.value.pause < 7300


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "99999999999999999"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "99999999999999999"},
        {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
    ],
    ids=["retry-after", "x-reset", "http-date"],
)
async def test_absurd_pauses_raise_no_overflow(
    headers: dict[str, str], json_log: io.StringIO
) -> None:
    # With any maximum they were an OverflowError (a traceback per user); here even a
    # maximum of a century reads them as a bounded pause and logs valid JSON.
    limiter = HostLimiter(LimiterConfig(max_pause=100 * 365 * 86400.0))
    await rate_limited(limiter, headers)
    async with asyncio.timeout(1):
        waiting = asyncio.create_task(limiter.acquire(HOST))
        await others_ran()
        assert not waiting.done()
        waiting.cancel()
    paused = [strict_json(line) for line in json_log.getvalue().splitlines()]
    assert any(e["event"] in {"limiter.paused", "limiter.quota_spent"} for e in paused)


async def test_a_millisecond_reset_on_a_429_pauses_for_seconds() -> None:
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    reset_ms = int((time.time() + 30) * 1000)
    await rate_limited(
        limiter, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset_ms)}
    )
    async with asyncio.timeout(1):
        waiting = asyncio.create_task(limiter.acquire(HOST))
        await others_ran()
        assert not waiting.done()  # paused, not refused
    waiting.cancel()
    assert 25 < limiter.paused()[HOST] - time.monotonic() < 35


async def test_an_infinite_reset_is_ignored_not_waited_forever(json_log: io.StringIO) -> None:
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    await rate_limited(limiter, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1e999"})
    # No readable reset: a 429 without one backs off (1 s first), it does not wait forever.
    assert limiter.paused()[HOST] < time.monotonic() + 2
    for line in json_log.getvalue().splitlines():
        strict_json(line)


async def test_a_long_storm_of_bare_429s_keeps_backing_off() -> None:
    # 2 ** strikes stopped converting to a float after ~1024 strikes: OverflowError.
    limiter = HostLimiter(LimiterConfig(max_pause=900))
    slot = limiter.slot(HOST)
    for _ in range(1100):
        slot.release(None, 429, {}, 0.01)
    assert limiter.paused()[HOST] < time.monotonic() + 61


def test_a_non_finite_float_in_an_event_stays_valid_json(json_log: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info("progress", paused={HOST: float("inf")}, rate=float("nan"), seq=[float("-inf")])
    log.info("plain", seconds=1.5)
    first, second = (strict_json(line) for line in json_log.getvalue().splitlines())
    assert first["paused"] == {HOST: "inf"}
    assert first["rate"] == "nan"
    assert first["seq"] == ["-inf"]
    assert second["seconds"] == 1.5
