"""The circuit breaker's logic: which outcomes trip it, which users it holds and releases."""

from __future__ import annotations

from friendscrape.config import Settings
from friendscrape.core.assemble import breaker_config
from friendscrape.core.breaker import BreakerConfig, CircuitBreaker, Failure, Trip

URL = "http://127.0.0.1:9/ada/following?cursor=secretish"
REFUSED = Failure("connect", URL)
HTTP_404 = Failure("http_404", "https://sim.example/typo/ada/following")
PORTAL = Failure("not_platform", "http://127.0.0.1:9/ada/following?cursor=c")


def breaker(users: int = 3) -> CircuitBreaker[str]:
    return CircuitBreaker(BreakerConfig(users=users))


def test_the_setting_feeds_the_config() -> None:
    assert breaker_config(Settings(breaker_users=7)).users == 7
    assert breaker_config(Settings()).users == 20


def test_n_same_cause_failures_in_a_row_trip_and_none_of_them_is_released() -> None:
    b = breaker(3)
    assert b.observe("u1", REFUSED).release == ()
    assert b.observe("u2", REFUSED).release == ()
    verdict = b.observe("u3", REFUSED)
    assert verdict.release == ()
    assert verdict.trip == Trip("connect", 3, URL)
    assert b.finish().release == ()  # the held users stay pending


def test_a_success_releases_the_held_failures_and_resets_the_count() -> None:
    b = breaker(3)
    b.observe("u1", REFUSED)
    b.observe("u2", REFUSED)
    assert b.observe("ok1", None).release == ("u1", "u2", "ok1")
    b.observe("u3", REFUSED)
    b.observe("u4", REFUSED)
    assert b.tripped is None
    assert b.finish().release == ("u3", "u4")


def test_another_cause_releases_the_streak_and_starts_its_own() -> None:
    b = breaker(3)
    b.observe("u1", REFUSED)
    b.observe("u2", REFUSED)
    assert b.observe("u3", HTTP_404).release == ("u1", "u2")
    b.observe("u4", HTTP_404)
    assert b.observe("u5", HTTP_404).trip == Trip("http_404", 3, HTTP_404.url)


def test_after_a_trip_finishing_users_are_saved_unless_they_failed_the_same_way() -> None:
    b = breaker(2)
    b.observe("u1", REFUSED)
    assert b.observe("u2", REFUSED).trip is not None
    assert b.observe("late_ok", None).release == ("late_ok",)
    assert b.observe("late_refused", REFUSED).release == ()
    assert b.observe("late_404", HTTP_404).release == ("late_404",)


def test_a_run_whose_every_user_failed_alike_trips_at_its_end() -> None:
    b = breaker(20)
    for user in ("u1", "u2", "u3"):
        assert b.observe(user, REFUSED).release == ()
    verdict = b.finish()
    assert verdict.release == ()
    assert verdict.trip == Trip("connect", 3, URL)


def test_a_run_with_one_answer_or_too_few_users_does_not_trip_at_its_end() -> None:
    b = breaker(20)
    b.observe("ok", None)
    b.observe("u1", REFUSED)
    b.observe("u2", REFUSED)
    b.observe("u3", REFUSED)
    assert b.finish().release == ("u1", "u2", "u3")
    small = breaker(20)
    small.observe("u1", REFUSED)
    small.observe("u2", REFUSED)
    assert small.finish().release == ("u1", "u2")
    assert small.tripped is None


def test_zero_turns_it_off() -> None:
    b = breaker(0)
    for user in ("u1", "u2", "u3", "u4"):
        assert b.observe(user, REFUSED).release == (user,)
    assert b.finish().trip is None


def test_the_message_names_the_cause_and_an_example_url_without_its_query() -> None:
    text = Trip("connect", 20, URL).message()
    assert "20 users in a row" in text
    assert "cannot connect to 127.0.0.1:9" in text
    assert "http://127.0.0.1:9/ada/following" in text
    assert "secretish" not in text
    assert "stay pending" in text
    assert "HTTP 404" in Trip("http_404", 20, HTTP_404.url).message()
    assert "does not resolve" in Trip("dns", 20, "https://gone.invalid/a").message()
    assert "login page" in Trip("login_wall", 20, "https://m.example/login").message()


def test_answers_that_are_not_the_platforms_trip_like_any_upstream_wide_cause() -> None:
    b = breaker(3)
    # One such answer among users the upstream answered: that user's failure alone.
    assert b.observe("ok1", None).release == ("ok1",)
    assert b.observe("odd", PORTAL).release == ()
    assert b.observe("ok2", None).release == ("odd", "ok2")
    # Recent users all failing so: the upstream is down in disguise.
    b.observe("u1", PORTAL)
    b.observe("u2", PORTAL)
    verdict = b.observe("u3", PORTAL)
    assert verdict.release == ()
    assert verdict.trip == Trip("not_platform", 3, PORTAL.url)


def test_the_message_says_the_answers_are_not_the_platforms() -> None:
    text = Trip("not_platform", 20, PORTAL.url).message()
    assert "20 users in a row" in text
    assert "127.0.0.1:9 answers with something that is not the platform's answer" in text
    assert "http://127.0.0.1:9/ada/following" in text
    assert "cursor=c" not in text
    assert "stay pending" in text
