"""The rate learned from 429s without quota headers: cut on a 429, probe up slowly."""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.core.pipeline import PartitionRun, RunConfig
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.learned_rate import COOLDOWN, CUT, LearnedRate
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _send(rate: LearnedRate, clock: Clock, per_second: int, seconds: float) -> None:
    """``per_second`` requests a second, evenly, for ``seconds``, each let through."""
    for _ in range(int(per_second * seconds)):
        clock.now += 1.0 / per_second
        rate.take(clock.now)
        rate.answered(clock.now)


def test_nothing_is_paced_until_a_429_then_the_rate_is_cut_from_the_pace_let_through() -> None:
    clock = Clock()
    rate = LearnedRate(clock.now)
    _send(rate, clock, 100, 2.0)
    assert rate.wait(clock.now) == 0.0
    assert rate.rate is None
    assert rate.limited(clock.now)
    assert rate.rate == pytest.approx(100 * CUT, rel=0.05)
    # The requests in flight when the limit was reached come back refused together.
    assert not rate.limited(clock.now + COOLDOWN / 2)
    assert rate.rate == pytest.approx(100 * CUT, rel=0.05)


def test_the_rate_paces_requests_and_grows_slowly_near_the_last_429() -> None:
    clock = Clock()
    rate = LearnedRate(clock.now)
    _send(rate, clock, 100, 2.0)
    rate.limited(clock.now)
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


def _limiter(clock: Clock, *, learn: bool = True) -> HostLimiter:
    return HostLimiter(LimiterConfig(concurrency=50, learn_rate=learn), clock=clock)


async def test_the_limiter_learns_from_retry_after_only_429s_and_reports_it() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(50):
        clock.now += 0.01
        permit = await limiter.acquire("up.example")
        limiter.release("up.example", status=200, headers={}, latency=0.01, permit=permit)
    assert limiter.learned_rates() == {}
    permit = await limiter.acquire("up.example")
    limiter.release(
        "up.example", status=429, headers={"retry-after": "1"}, latency=0.01, permit=permit
    )
    learned = limiter.learned_rates()
    assert set(learned) == {"up.example"}
    assert 0 < learned["up.example"] < 100


async def test_quota_headers_are_followed_not_learned_and_learning_can_be_off() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    permit = await limiter.acquire("api.example")
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(2e9))}
    limiter.release("api.example", status=429, headers=headers, latency=0.01, permit=permit)
    assert limiter.learned_rates() == {}
    off = _limiter(clock, learn=False)
    permit = await off.acquire("up.example")
    off.release("up.example", status=429, headers={"retry-after": "1"}, latency=0.01, permit=permit)
    assert off.learned_rates() == {}


async def test_each_token_of_a_pool_learns_its_own_rate() -> None:
    clock = Clock()
    pool = CredentialPool(["token-a", "token-b"])
    limiter = HostLimiter(LimiterConfig(concurrency=50), pools={"api.example": pool}, clock=clock)
    for _ in range(20):
        clock.now += 0.01
        permit = await limiter.acquire("api.example")
        limiter.release("api.example", status=200, headers={}, latency=0.01, permit=permit)
    permit = await limiter.acquire("api.example")
    assert permit.credential is not None
    limiter.release(
        "api.example", status=429, headers={"retry-after": "1"}, latency=0.01, permit=permit
    )
    # The upstream counts each token apart: only the refused token's rate is cut.
    assert set(limiter.learned_rates()) == {f"api.example/{permit.credential}"}


def test_a_429_in_the_first_second_tells_no_pace_so_the_rate_probes_fast() -> None:
    clock = Clock()
    rate = LearnedRate(clock.now)
    _send(rate, clock, 100, 0.2)  # an upstream's full bucket lets a burst through
    assert rate.limited(clock.now)
    first = rate.rate
    assert first is not None
    clock.now += 5.0
    rate.wait(clock.now)
    assert rate.rate is not None
    assert rate.rate > first * 1.4


def test_429s_that_come_whatever_the_pace_make_it_give_the_rate_up() -> None:
    clock = Clock()
    rate = LearnedRate(clock.now)
    _send(rate, clock, 100, 2.0)
    for _ in range(20):
        rate.limited(clock.now)
        _send(rate, clock, 100, COOLDOWN)  # refused again soon, however slow it goes
    assert rate.given_up
    assert rate.rate is None
    assert rate.wait(clock.now) == 0.0


async def test_progress_events_show_the_learned_rate(tmp_path: Path) -> None:
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(50):
        clock.now += 0.01
        permit = await limiter.acquire("up.example")
        limiter.release("up.example", status=200, headers={}, latency=0.01, permit=permit)
    permit = await limiter.acquire("up.example")
    limiter.release(
        "up.example", status=429, headers={"retry-after": "1"}, latency=0.01, permit=permit
    )
    settings = Settings(store=f"sqlite:///{tmp_path / 'store.db'}")
    run = PartitionRun(
        RunConfig.from_settings(settings),
        SqliteStore(tmp_path / "store.db"),
        TwitterMobileSource("http://up.example"),
        partition=1,
        limiter=limiter,
    )
    learned = run.progress_fields()["learned_rate"]
    assert learned == {"up.example": round(limiter.learned_rates()["up.example"], 1)}
    assert learned["up.example"] > 0
