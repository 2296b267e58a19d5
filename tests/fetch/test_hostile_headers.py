"""Hostile rate-limit headers: every value gives a bounded wait or is ignored, never raises."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from friendscrape.fetch.ratelimit_headers import parse_reset, read_rate_limit
from friendscrape.fetch.retry_after import parse_retry_after

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
TEN_YEARS = 10 * 365 * 86400
LONGEST_WAIT = float(TEN_YEARS)  # the longest wait a header is read as


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("86400", 86400.0),
        ("99999999999999999", LONGEST_WAIT),  # was 1e17 s: OverflowError downstream
        ("9" * 400, LONGEST_WAIT),  # float() of it is infinite
        ("Fri, 31 Dec 9999 23:59:59 GMT", LONGEST_WAIT),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("²", None),  # a unicode digit: was ValueError from float()
        ("-5", None),
        ("1.5e3", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_bounded_or_ignored(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(EPOCH + 600), 600.0),  # epoch seconds
        (str((EPOCH + 42) * 1000), 42.0),  # epoch milliseconds: an upstream bug, read as meant
        (str(EPOCH * 1000 - 5000), 0.0),  # milliseconds, just past
        (str(EPOCH + TEN_YEARS - 100), TEN_YEARS - 100.0),  # far but plausible seconds
        ("99999999999999999", LONGEST_WAIT),  # neither seconds nor milliseconds of our era
        (str((EPOCH + 42) * 1_000_000), LONGEST_WAIT),  # microseconds: not guessed
        ("1e999", None),
        ("inf", None),
        ("nan", None),
        ("-1", None),
        ("42", 42.0),  # delta-seconds (IETF draft)
        ("900000000", LONGEST_WAIT),  # a delta of 28 years
        ("9999-12-31T23:59:59-23:59", LONGEST_WAIT),  # Mastodon's ISO form, far off
        ("0001-01-01T00:00:00+23:59", 0.0),
        ("2026-05-01T12:15:00+00:00", 900.0),
        ("tomorrow", None),
    ],
)
def test_reset_is_bounded_or_ignored(value: str, expected: float | None) -> None:
    assert parse_reset(value, now=NOW) == expected


def test_a_millisecond_x_reset_reads_as_seconds_away() -> None:
    info = read_rate_limit(
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str((EPOCH + 30) * 1000)}, now=NOW
    )
    assert info.remaining == 0
    assert info.reset_after == 30.0


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [("1e999", None), ("nan", None), ("-3", 0), ("1e30", 2**31 - 1), ("7.9", 7), ("x", None)],
)
def test_counts_are_bounded_or_ignored(remaining: str, expected: int | None) -> None:
    # "1e999" raised OverflowError (int of an infinite float).
    info = read_rate_limit({"x-rate-limit-remaining": remaining, "x-rate-limit-limit": remaining})
    assert info.remaining == expected
    assert info.limit == expected


def test_a_hostile_server_date_does_not_raise() -> None:
    info = read_rate_limit(
        {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT", "date": "Mon, 01 Jan 0001 00:00:00 GMT"},
        now=NOW,
    )
    assert info.retry_after is not None
    assert 0.0 <= info.retry_after <= LONGEST_WAIT


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1e999", "-1e999", "nan", "inf", "²", "", " ", "0x10", "1_000"]),
)
_VALUES = st.one_of(_NUMBERS, st.text(max_size=40), st.datetimes().map(str))
_NAMES = st.sampled_from(
    [
        "retry-after",
        "date",
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_NAMES, _VALUES, max_size=6))
def test_any_header_values_give_bounded_numbers(headers: dict[str, str]) -> None:
    info = read_rate_limit(headers, now=NOW)
    for wait in (info.retry_after, info.reset_after):
        assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= LONGEST_WAIT)
    for count in (info.limit, info.remaining):
        assert count is None or 0 <= count <= 2**31 - 1
