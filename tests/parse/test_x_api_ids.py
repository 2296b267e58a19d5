"""The x-api bulk check of a page's ids: the same answer for every id shape (X's own,
mostly 19 digits starting 1[0-7]; the simulator's 20 digits starting 15; hostile ones),
as a page and one id at a time, and what the careful path says of each."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from friendscrape.errors import ParseError
from friendscrape.parse import x_api

PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def bulk_valid(value: str) -> bool:
    """What the bulk check lets through: decimal ASCII digits, no leading zero, up to
    19 digits or 20 below 18 * 10**18 (every such id is below 2**64)."""
    if not (value.isascii() and value.isdigit()) or value.startswith("0"):
        return False
    return len(value) <= 19 or (len(value) == 20 and int(value) < 18 * 10**18)


REAL = ["783214", "2244994945", "1234567890123456789", "1799999999999999999", "1000000000000000000"]
SIMULATOR = ["15000000000000000000", "15999999999999999999", "17999999999999999999"]
HOSTILE = [
    "",
    "0",
    "01",
    "18000000000000000000",  # 20 digits, over the bulk bound: the careful path's
    "18446744073709551616",  # 2**64
    "1" * 21,
    "1" * 1000,
    "9" * 20,
    "1799999999999999999 ",
    " 1",
    "+1",
    "-1",
    "1e5",
    "١٢٣",  # digits, but not ASCII
    "12\u00a03",
]
# A line feed in an id would split it in two in the joined text: the check counts the
# text's line feeds first (json_pages.joined_fullmatch), and the careful path reads it.
LINE_FEED = ["1\n2", "1799999999999999999\n1"]


@pytest.mark.parametrize("value", REAL + SIMULATOR + HOSTILE)
def test_the_ids_check_answers_as_its_definition_for_each_shape(value: str) -> None:
    assert (x_api._IDS.fullmatch(value) is not None) == bulk_valid(value)


@PROPERTY
@given(
    values=st.lists(
        st.one_of(
            st.sampled_from(REAL + SIMULATOR + HOSTILE),
            st.integers(1, 22).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
            st.integers(10**17, 2 * 10**19).map(str),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_page_of_ids_passes_exactly_when_every_id_does(values: list[str]) -> None:
    page_ok = x_api._IDS.fullmatch("\n".join(values)) is not None
    every = all(bulk_valid(v) for v in values)
    assert page_ok == every


@pytest.mark.parametrize("value", REAL + SIMULATOR + HOSTILE + LINE_FEED)
def test_a_page_with_the_id_reads_as_the_careful_path_reads_it(value: str) -> None:
    body = json.dumps(
        {"data": [{"id": value, "username": "grace_h"}], "meta": {"result_count": 1}}
    ).encode()
    valid = x_api.is_valid_user_id(value)
    if valid:
        page = x_api.parse_following_page(body, status=200, url="u")
        assert page.ids == (value,)
    else:
        with pytest.raises(ParseError):
            x_api.parse_following_page(body, status=200, url="u")
