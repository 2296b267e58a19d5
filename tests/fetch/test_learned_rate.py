"""The rate learned from 429s without quota headers: cut on a 429, probe up slowly, and
give up on 429s that are not about the pace. Driven with a fake clock, no sleeps."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from friendscrape.config import Settings
from friendscrape.core.assemble import run_config
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.learned_rate import COOLDOWN, CUT, DOUBTS, UNTOLD, LearnedRate
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pauses:
    """A host's pauses, as the limiter's slot keeps them."""

    def __init__(self) -> None:
        self.paused_until = 0.0
        self._before = 0.0
        self._from = 0.0

    def pause(self, now: float, seconds: float) -> None:
        if self.paused_until <= now:
            self._before += self.paused_until - self._from
            self._from = now
        self.paused_until = max(self.paused_until, now + seconds)

    def paused_seconds(self, now: float) -> float:
        return self._before + max(min(now, self.paused_until) - self._from, 0.0)


def _send(rate: LearnedRate, clock: Clock, per_second: int, seconds: float) -> None:
    """``per_second`` requests a second, evenly, for ``seconds``, each let through."""
    for _ in range(int(per_second * seconds)):
        clock.now += 1.0 / per_second
        rate.take(clock.now)
        rate.answered(clock.now)


def _first_cut(rate: LearnedRate, clock: Clock, pauses: Pauses, *, echoes: int = 0) -> None:
    """A 429 (pausing the host a second) with ``echoes`` 429s from requests in flight,
    then the pause's end."""
    assert not rate.limited(clock.now), "the first 429 is held until the host's pause ends"
    pauses.pause(clock.now, 1.0)
    for _ in range(echoes):
        clock.now += 0.01
        rate.limited(clock.now)
    clock.now = pauses.paused_until
    rate.settle(clock.now)


def test_nothing_is_paced_until_a_429_then_the_rate_is_cut_from_the_pace_let_through() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    _send(rate, clock, 100, 2.0)
    assert rate.wait(clock.now) == 0.0
    assert rate.rate is None
    _first_cut(rate, clock, pauses, echoes=5)
    assert rate.rate == pytest.approx(100 * CUT, rel=0.05)
    # The requests in flight when the limit was reached come back refused together.
    assert not rate.limited(clock.now + COOLDOWN / 4)
    assert rate.rate == pytest.approx(100 * CUT, rel=0.05)


def test_a_first_429_whose_requests_in_flight_got_through_tells_no_rate() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    for _ in range(UNTOLD):
        _send(rate, clock, 100, 2.0)
        assert not rate.limited(clock.now)
        pauses.pause(clock.now, 1.0)
        # The 20 requests in flight come back while the host pauses: one refused.
        _send(rate, clock, 20, 0.95)
        rate.limited(clock.now)
        clock.now = pauses.paused_until
        assert rate.rate is None
        rate.settle(clock.now)
        assert rate.wait(clock.now) == 0.0
    # A limit reached refuses the requests in flight too: three lone 429s are not one.
    assert rate.given_up
    assert rate.cuts == 0
    assert rate.rate is None


def test_the_rate_paces_requests_and_grows_slowly_near_the_last_429() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    _send(rate, clock, 100, 2.0)
    _first_cut(rate, clock, pauses)
    learned = rate.rate
    assert learned is not None
    # Paced: a burst of requests at one instant must wait, one after another.
    waits = []
    for _ in range(10):
        waits.append(rate.wait(clock.now))
        rate.take(clock.now)
    assert waits[-1] > 0.05
    # Once a 429 told a pace, the rate probes upward slowly: 1% a second.
    clock.now += 10.0
    rate.wait(clock.now)
    assert rate.rate is not None
    assert learned * 1.05 < rate.rate < learned * 1.15


def test_a_pause_does_not_read_as_an_upstream_letting_less_through() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    _send(rate, clock, 100, 0.5)
    pauses.pause(clock.now, 1.0)
    clock.now += 1.0
    _send(rate, clock, 100, 1.0)
    # 150 answers in 2.5 s, of which 1 s paused: 100 a second, not 60.
    assert rate.pace(clock.now) == pytest.approx(100, rel=0.05)


def test_a_429_in_the_first_second_tells_no_pace_so_the_rate_probes_fast() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    _send(rate, clock, 100, 0.2)  # an upstream's full bucket lets a burst through
    _first_cut(rate, clock, pauses)
    first = rate.rate
    assert first is not None
    clock.now += 5.0
    rate.wait(clock.now)
    assert rate.rate is not None
    assert rate.rate > first * 1.4


def test_429s_that_keep_coming_after_cuts_make_it_give_the_rate_up() -> None:
    clock, pauses = Clock(), Pauses()
    rate = LearnedRate(clock.now, pauses)
    _send(rate, clock, 100, 2.0)
    _first_cut(rate, clock, pauses, echoes=5)
    for _ in range(2 + DOUBTS):  # refused again soon after each cut, however slow it goes
        _send(rate, clock, 50, COOLDOWN + 1.0)
        rate.limited(clock.now)
        pauses.pause(clock.now, 1.0)
        clock.now = pauses.paused_until
        if rate.given_up:
            break
    assert rate.given_up
    assert rate.doubts == DOUBTS
    # Restored: requests go unpaced again, and later 429s teach nothing.
    assert rate.rate is None
    assert rate.wait(clock.now) == 0.0
    assert not rate.limited(clock.now + 10.0)
    assert rate.rate is None


@dataclass
class Outcome:
    answered_per_s: float
    share_429: float
    given_up: bool


def _collect(
    *, limit: float | None = None, random_share: float = 0.0, learn: bool = True
) -> Outcome:
    """120 simulated seconds of 32 requests in flight at 20 ms against an upstream that
    enforces ``limit`` requests/s (a token bucket of a second's worth, as the simulator's)
    or refuses ``random_share`` of requests at random; each 429 pauses the host 1 s."""
    seconds, concurrency, latency = 120.0, 32, 0.02
    draw = random.Random(7)
    pauses = Pauses()
    now = 0.0
    rate = LearnedRate(now, pauses)
    tokens, filled = float(limit or 0), now
    in_flight: list[tuple[float, bool]] = []  # (answered at, let through)
    answered = refused = 0
    while now < seconds:
        while len(in_flight) < concurrency and pauses.paused_until <= now:
            if learn:
                rate.settle(now)
                if rate.wait(now) > 0:
                    break
                rate.take(now)
            if limit is None:
                through = draw.random() >= random_share
            else:
                tokens, filled = min(tokens + (now - filled) * limit, limit), now
                through = tokens >= 1.0
                tokens -= 1.0 if through else 0.0
            heapq.heappush(in_flight, (now + latency * (0.5 + draw.random()), through))
        upcoming = in_flight[0][0] if in_flight else seconds
        if pauses.paused_until > now:
            upcoming = min(upcoming, pauses.paused_until)
        elif learn and len(in_flight) < concurrency:
            upcoming = min(upcoming, now + max(rate.wait(now), 1e-6))
        now = max(upcoming, now + 1e-9)
        while in_flight and in_flight[0][0] <= now:
            at, through = heapq.heappop(in_flight)
            if through:
                answered += 1
                if learn:
                    rate.answered(at)
            else:
                refused += 1
                if learn:
                    rate.limited(at)
                pauses.pause(at, 1.0)
    return Outcome(answered / seconds, refused / max(answered + refused, 1), rate.given_up)


@pytest.mark.parametrize("limit", [20, 50, 150])
def test_against_a_limit_told_by_429s_alone_the_goal_is_met(limit: int) -> None:
    learned = _collect(limit=limit)
    assert not learned.given_up
    assert learned.share_429 <= 0.02
    assert learned.answered_per_s >= 0.8 * limit
    # Without learning the same upstream refuses far more.
    assert _collect(limit=limit, learn=False).share_429 > 3 * learned.share_429


@pytest.mark.parametrize("share", [0.05, 0.01])
def test_random_429s_are_told_apart_and_cost_under_a_tenth_of_the_pace(share: float) -> None:
    learned = _collect(random_share=share)
    assert learned.given_up
    assert learned.answered_per_s >= 0.9 * _collect(random_share=share, learn=False).answered_per_s


def _limiter(clock: Clock, *, learn: bool = True) -> HostLimiter:
    return HostLimiter(LimiterConfig(concurrency=50, learn_rate=learn), clock=clock)


async def _answer(limiter: HostLimiter, clock: Clock, host: str, status: int, n: int = 1) -> None:
    for _ in range(n):
        clock.now += 0.01
        permit = await limiter.acquire(host)
        headers = {"retry-after": "1"} if status == 429 else {}
        limiter.release(host, status=status, headers=headers, latency=0.01, permit=permit)


async def test_the_limiter_learns_from_retry_after_only_429s_and_reports_it() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    await _answer(limiter, clock, "up.example", 200, 50)
    assert limiter.learned_rates() == {}
    with capture_logs() as logs:
        await _answer(limiter, clock, "up.example", 429)
        clock.now += 1.0  # the pause the 429 asked for
        await limiter.acquire("up.example")
    learned = limiter.learned_rates()
    assert set(learned) == {"up.example"}
    assert 0 < learned["up.example"] < 100
    assert [e["event"] for e in logs if e["event"].startswith("limiter.rate")] == [
        "limiter.rate_learned"
    ]


async def test_the_limiter_says_once_that_it_gave_a_rate_up() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    with capture_logs() as logs:
        for _ in range(UNTOLD):
            await _answer(limiter, clock, "up.example", 200, 50)
            permits = [await limiter.acquire("up.example") for _ in range(10)]
            # One 429; the other nine requests in flight with it get through.
            for n, permit in enumerate(permits):
                status, headers = (429, {"retry-after": "1"}) if n == 0 else (200, {})
                clock.now += 0.01
                limiter.release(
                    "up.example", status=status, headers=headers, latency=0.01, permit=permit
                )
            clock.now += 1.0
        await _answer(limiter, clock, "up.example", 200, 5)
    given_up = [e for e in logs if e["event"] == "limiter.rate_given_up"]
    assert len(given_up) == 1
    assert "not a rate limit" in given_up[0]["reason"]
    assert not [e for e in logs if e["event"] == "limiter.rate_learned"]
    assert limiter.learned_rates() == {}


async def test_quota_headers_are_followed_not_learned_and_learning_can_be_off() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    permit = await limiter.acquire("api.example")
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(2e9))}
    limiter.release("api.example", status=429, headers=headers, latency=0.01, permit=permit)
    assert limiter.learned_rates() == {}
    off = _limiter(clock, learn=False)
    await _answer(off, clock, "up.example", 200, 50)
    await _answer(off, clock, "up.example", 429)
    clock.now += 1.0
    await _answer(off, clock, "up.example", 200)
    assert off.learned_rates() == {}


async def test_each_token_of_a_pool_learns_its_own_rate() -> None:
    clock = Clock()
    pool = CredentialPool(["token-a", "token-b"])
    limiter = HostLimiter(LimiterConfig(concurrency=50), pools={"api.example": pool}, clock=clock)
    await _answer(limiter, clock, "api.example", 200, 20)
    permit = await limiter.acquire("api.example")
    assert permit.credential is not None
    limiter.release(
        "api.example", status=429, headers={"retry-after": "1"}, latency=0.01, permit=permit
    )
    clock.now += 1.0
    # A token's held 429 is judged when that token is next chosen.
    for _ in range(4):
        clock.now += 0.1
        await limiter.acquire("api.example")
    # The upstream counts each token apart: only the refused token's rate is cut.
    assert set(limiter.learned_rates()) == {f"api.example/{permit.credential}"}


async def test_progress_events_show_the_learned_rate(tmp_path: Path) -> None:
    clock = Clock()
    limiter = _limiter(clock)
    await _answer(limiter, clock, "up.example", 200, 50)
    await _answer(limiter, clock, "up.example", 429)
    clock.now += 1.0
    await limiter.acquire("up.example")
    settings = Settings(store=f"sqlite:///{tmp_path / 'store.db'}")
    run = PartitionRun(
        run_config(settings),
        SqliteStore(tmp_path / "store.db"),
        TwitterMobileSource("http://up.example"),
        partition=1,
        limiter=limiter,
    )
    learned = run.progress_fields()["learned_rate"]
    assert learned == {"up.example": round(limiter.learned_rates()["up.example"], 1)}
    assert learned["up.example"] > 0
