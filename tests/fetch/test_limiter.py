"""The per-host limiter: pauses, concurrency, quota windows and the adaptive policy."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from friendscrape.fetch.concurrency import adapt
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig

HOST = "upstream.test"


async def answered(limiter: HostLimiter) -> None:
    """One request to HOST and back: the first request to a host goes alone."""
    permit = await limiter.acquire(HOST)
    limiter.release(HOST, status=200, headers={}, latency=0.01, permit=permit)


async def others_ran() -> None:
    """Return once every task scheduled before this call has taken its first step, by
    waiting on an Event set by a task scheduled after them (the loop runs tasks in FIFO
    order): proof that the loop was free while they wait."""
    ran = asyncio.Event()

    async def mark() -> None:
        ran.set()

    marker = asyncio.create_task(mark())
    await ran.wait()
    await marker


def test_adapt_grows_additively_and_cuts_multiplicatively() -> None:
    assert adapt(4.0, 10, "ok", slow_start=True) == 5.0
    assert adapt(4.0, 10, "ok", slow_start=False) == 4.25
    assert adapt(10.0, 10, "ok", slow_start=True) == 10.0  # never above the cap
    assert adapt(8.0, 10, "rate_limited", slow_start=False) == 4.0
    assert adapt(10.0, 10, "server_error", slow_start=False) == 7.0
    assert adapt(10.0, 10, "no_response", slow_start=False) == 7.0
    assert adapt(10.0, 10, "slow", slow_start=False) == 8.0
    assert adapt(1.0, 10, "rate_limited", slow_start=False) == 1.0  # never below one


async def test_a_429_pauses_the_whole_host_without_blocking_the_loop() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=4))
    permit = await limiter.acquire(HOST)
    limiter.release(HOST, status=429, headers={"retry-after": "30"}, latency=0.01, permit=permit)
    assert limiter.paused()[HOST] > time.monotonic() + 25
    waiting = asyncio.create_task(limiter.acquire(HOST))
    other_host = asyncio.create_task(limiter.acquire("other.test"))
    await others_ran()
    await other_host  # another host is not paused
    assert not waiting.done()
    waiting.cancel()


async def test_a_spent_window_pauses_until_its_reset_and_shows_it() -> None:
    limiter = HostLimiter(LimiterConfig())
    permit = await limiter.acquire(HOST)
    headers = {"x-rate-limit-limit": "15", "x-rate-limit-remaining": "0"}
    headers["x-rate-limit-reset"] = str(int(time.time()) + 600)
    with capture_logs() as logs:
        limiter.release(HOST, status=200, headers=headers, latency=0.01, permit=permit)
        waiting = asyncio.create_task(limiter.acquire(HOST))
        await others_ran()
    assert not waiting.done()
    assert limiter.paused()[HOST] > time.monotonic() + 500
    paused = [e for e in logs if e["event"] == "limiter.paused"]
    assert paused
    assert paused[0]["host"] == HOST
    assert "reset" in paused[0]["reason"]
    waiting.cancel()


async def test_the_first_request_to_a_host_goes_alone() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=8))
    first = await limiter.acquire(HOST)
    second = asyncio.create_task(limiter.acquire(HOST))
    await others_ran()
    assert not second.done()
    limiter.release(HOST, status=200, headers={}, latency=0.01, permit=first)
    await second


async def test_in_flight_requests_never_exceed_the_concurrency() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=3, adaptive=False))
    await answered(limiter)
    permits = [await limiter.acquire(HOST) for _ in range(3)]
    fourth = asyncio.create_task(limiter.acquire(HOST))
    await others_ran()
    assert not fourth.done()
    limiter.release(HOST, status=200, headers={}, latency=0.01, permit=permits[0])
    await fourth
    assert limiter.slot(HOST).in_flight == 3


async def test_concurrency_changes_are_logged_with_old_new_and_reason() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=20))
    slot = limiter.slot(HOST)
    start = slot.limit
    with capture_logs() as logs:
        for _ in range(5):
            permit = await limiter.acquire(HOST)
            limiter.release(HOST, status=200, headers={}, latency=0.01, permit=permit)
        grown = slot.limit
        permit = await limiter.acquire(HOST)
        limiter.release(HOST, status=503, headers={}, latency=0.01, permit=permit)
    assert grown == start + 5
    assert slot.limit == grown * 0.7
    changes = [e for e in logs if e["event"] == "limiter.concurrency"]
    assert changes[0]["old"] == int(start)
    assert changes[0]["new"] == int(start) + 1
    assert changes[-1]["reason"] == "HTTP 503"
    assert changes[-1]["new"] < changes[-1]["old"]


async def test_slow_start_growth_is_reported_in_a_few_events_not_one_per_step() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=300))
    slot = limiter.slot(HOST)
    start = int(slot.limit)
    with capture_logs() as logs:
        for _ in range(400):
            await answered(limiter)
    assert slot.limit == 300
    changes = [e for e in logs if e["event"] == "limiter.concurrency"]
    # The first step, then the cap: every step in between is spanned by the second.
    assert [(e["old"], e["new"]) for e in changes] == [(start, start + 1), (start + 1, 300)]


async def test_a_burst_of_429s_from_one_round_trip_cuts_once() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=16))
    slot = limiter.slot(HOST)
    await answered(limiter)
    permits = [await limiter.acquire(HOST) for _ in range(8)]
    before = slot.limit
    for permit in permits:
        limiter.release(HOST, status=429, headers={}, latency=0.01, permit=permit)
    assert slot.limit == before / 2


async def test_fixed_concurrency_is_never_adapted() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=5, adaptive=False))
    permit = await limiter.acquire(HOST)
    limiter.release(HOST, status=500, headers={}, latency=0.01, permit=permit)
    assert limiter.slot(HOST).limit == 5


async def test_climbing_latency_cuts_concurrency() -> None:
    limiter = HostLimiter(LimiterConfig(concurrency=20))
    slot = limiter.slot(HOST)
    for _ in range(15):
        permit = await limiter.acquire(HOST)
        limiter.release(HOST, status=200, headers={}, latency=0.05, permit=permit)
    peak = slot.limit
    with capture_logs() as logs:
        for _ in range(15):
            permit = await limiter.acquire(HOST)
            limiter.release(HOST, status=200, headers={}, latency=2.0, permit=permit)
    assert slot.limit < peak
    assert any("latency" in e.get("reason", "") for e in logs)


async def _latency_story(limiter: HostLimiter) -> list[str]:
    """20 quick responses, then 40 that take 0.6 s; the reasons of every cut."""
    with capture_logs() as logs:
        for latency in [0.01] * 20 + [0.6] * 40:
            permit = await limiter.acquire(HOST)
            limiter.release(HOST, status=200, headers={}, latency=latency, permit=permit)
    return [
        e["reason"] for e in logs if e["event"] == "limiter.concurrency" and e["new"] < e["old"]
    ]


async def test_latency_from_our_own_busy_loop_is_not_read_as_a_slow_upstream() -> None:
    cuts = await _latency_story(HostLimiter(LimiterConfig(concurrency=200)))
    assert cuts
    assert "latency" in cuts[0]
    # The lag probe says the responses waited 0.59 s for our own event loop.
    busy = HostLimiter(LimiterConfig(concurrency=200), lag=lambda: 0.59)
    assert await _latency_story(busy) == []


async def test_a_request_that_may_start_does_not_queue_behind_a_line_passing_the_lock() -> None:
    """Once a line has formed, a request that may start now starts at once: it does not
    wait for each waiter's own turn of the loop (a convoy that woke the loop per page)."""
    limiter = HostLimiter(LimiterConfig(concurrency=2, adaptive=False))
    await answered(limiter)
    held = await limiter.acquire(HOST)
    await limiter.acquire(HOST)  # full: the next two wait in line

    async def served_then_asks_again() -> bool:
        """Whether asking again right after being served had to give up the loop."""
        permit = await limiter.acquire(HOST)
        # The line's lock is now passed to the waiter behind, whose turn has not come.
        limiter.release(HOST, status=200, headers={}, latency=0.01, permit=permit)
        again = limiter.acquire(HOST)
        try:
            again.send(None)  # one step: a permit at once, or a wait
        except StopIteration:
            return False
        again.close()
        return True

    head = asyncio.create_task(served_then_asks_again())
    behind = asyncio.create_task(limiter.acquire(HOST))
    await others_ran()
    limiter.release(HOST, status=200, headers={}, latency=0.01, permit=held)
    assert await head is False  # the second request started without giving up the loop
    assert not behind.done()  # the waiter behind still waits: two are in flight
    behind.cancel()
