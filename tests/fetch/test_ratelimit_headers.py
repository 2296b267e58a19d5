"""Reading every platform's rate-limit headers: pure functions against a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from friendscrape.fetch.ratelimit_headers import (
    RateLimitInfo,
    parse_reset,
    read_rate_limit,
    server_now,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())


def test_x_api_headers_give_remaining_and_reset_from_epoch_seconds() -> None:
    info = read_rate_limit(
        {
            "x-rate-limit-limit": "15",
            "x-rate-limit-remaining": "3",
            "x-rate-limit-reset": str(EPOCH + 600),
        },
        now=NOW,
    )
    assert info == RateLimitInfo(limit=15, remaining=3, reset_after=600.0)


def test_bluesky_reset_is_epoch_and_ietf_reset_is_delta() -> None:
    bluesky = read_rate_limit(
        {"ratelimit-remaining": "0", "ratelimit-reset": str(EPOCH + 42)}, now=NOW
    )
    ietf = read_rate_limit({"ratelimit-remaining": "0", "ratelimit-reset": "42"}, now=NOW)
    assert bluesky.reset_after == ietf.reset_after == 42.0
    assert bluesky.remaining == ietf.remaining == 0


def test_mastodon_reset_is_an_iso_8601_time() -> None:
    info = read_rate_limit(
        {
            "x-ratelimit-limit": "300",
            "x-ratelimit-remaining": "299",
            "x-ratelimit-reset": "2024-05-01T12:04:30.500Z",
        },
        now=NOW,
    )
    assert info.limit == 300
    assert info.remaining == 299
    assert info.reset_after == pytest.approx(270.5)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert read_rate_limit({"retry-after": "7"}, now=NOW).retry_after == 7.0
    dated = read_rate_limit({"retry-after": "Wed, 01 May 2024 12:00:30 GMT"}, now=NOW)
    assert dated.retry_after == 30.0
    assert not dated.has_quota


def test_combined_ietf_header_forms() -> None:
    old = read_rate_limit({"ratelimit": "limit=10, remaining=4, reset=20"}, now=NOW)
    new = read_rate_limit({"ratelimit": '"default";r=4;t=20'}, now=NOW)
    assert (old.limit, old.remaining, old.reset_after) == (10, 4, 20.0)
    assert (new.remaining, new.reset_after) == (4, 20.0)


def test_a_reset_in_the_past_means_now_and_garbage_means_unknown() -> None:
    assert parse_reset(str(EPOCH - 100), now=NOW) == 0.0
    assert parse_reset("soon", now=NOW) is None
    assert parse_reset("-3", now=NOW) is None
    assert parse_reset(None, now=NOW) is None
    assert read_rate_limit({"x-rate-limit-remaining": "lots"}, now=NOW).remaining is None


def test_no_rate_limit_headers_says_nothing() -> None:
    assert read_rate_limit({"content-type": "text/html"}, now=NOW) == RateLimitInfo()


def test_a_skewed_local_clock_is_corrected_by_the_servers_date() -> None:
    server = "Wed, 01 May 2024 12:10:00 GMT"  # ten minutes ahead of us
    assert server_now({"date": server}, now=NOW) == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
    info = read_rate_limit(
        {"date": server, "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(EPOCH + 660)},
        now=NOW,
    )
    assert info.reset_after == 60.0
    # Within the Date header's resolution our own clock is kept.
    assert server_now({"date": "Wed, 01 May 2024 12:00:01 GMT"}, now=NOW) == NOW
