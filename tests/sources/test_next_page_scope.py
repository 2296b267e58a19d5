"""Every page of a user's list is the first page's list: the shared rule (only paging
parameters may change), the parsers' own next-link checks, and malformed URLs an
upstream hands over (redirects, links) as typed errors, never a ValueError."""

from __future__ import annotations

from typing import Any

import pytest

from friendscrape.config import Settings
from friendscrape.core.assemble import http_config
from friendscrape.errors import ParseError, PermanentFetchError
from friendscrape.fetch.http import HttpClient, HttpConfig
from friendscrape.fetch.wire import PageRequest
from friendscrape.parse.mastodon import parse_following_page as parse_mastodon
from friendscrape.parse.twitter_mobile import parse_following_page as parse_mobile
from friendscrape.sources import base
from friendscrape.sources.base import InvalidURLError, other_list
from friendscrape.sources.mastodon import MastodonSource
from friendscrape.sources.twitter_mobile import TwitterMobileSource

FIRST = "https://m.example/api/v1/accounts/2005/following?limit=80"
PAGING = MastodonSource.paging_params


@pytest.mark.parametrize(
    "url",
    [
        "https://m.example/api/v1/accounts/2005/following?limit=80&max_id=9",
        "https://m.example/api/v1/accounts/2005/following?max_id=9",
        "https://M.EXAMPLE:443/api/v1/accounts/2005/following/?max_id=9",
        "https://m.example/api/v1/accounts/%32005/following?max_id=9",
    ],
)
def test_only_paging_parameters_may_change(url: str) -> None:
    assert other_list(FIRST, url, PAGING) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://m.example/api/v1/accounts/2006/following?max_id=9", "another account"),
        ("https://m.example/api/v1/accounts/2005/followers?max_id=9", "another account"),
        ("https://m.example/api/v1/accounts/2005%2Ffollowing?max_id=9", "another account"),
        ("https://m.example/api/v1/accounts/2005/following?max_id=9&x=1", "other query"),
        ("https://m.example:8443/api/v1/accounts/2005/following", "another host"),
        ("http://m.example/api/v1/accounts/2005/following", "another host"),
        ("https://n.example/api/v1/accounts/2005/following", "another host"),
    ],
)
def test_another_account_endpoint_or_host_is_named(url: str, says: str) -> None:
    problem = other_list(FIRST, url, PAGING)
    assert problem is not None
    assert problem.startswith(says)


@pytest.mark.parametrize(
    "url", ["http://[::1", "https://m.example:99999/", "https://m.example:-1/"]
)
def test_an_unreadable_url_is_its_own_error(url: str) -> None:
    with pytest.raises(InvalidURLError):
        other_list(FIRST, url, PAGING)


@pytest.mark.parametrize("first", ["http://[::1", "https://m.example:99999/"])
def test_an_unreadable_first_url_is_its_own_error_each_time(first: str) -> None:
    for _ in range(2):  # not remembered as readable after the first time
        with pytest.raises(InvalidURLError):
            other_list(first, FIRST, PAGING)


HTML_FIRST = "http://127.0.0.1:8080/ada_example/following"


@pytest.mark.parametrize(
    ("first", "url"),
    [
        (HTML_FIRST, f"{HTML_FIRST}?cursor=1603141412870551205"),
        (HTML_FIRST, f"{HTML_FIRST}?cursor=1&x=2"),
        (HTML_FIRST, f"{HTML_FIRST}?x=2"),
        (HTML_FIRST, f"{HTML_FIRST}?"),
        (HTML_FIRST, f"{HTML_FIRST}?cursor=1#x=2"),
        (HTML_FIRST, f"{HTML_FIRST}?cur\tsor=1"),
        (HTML_FIRST, f"{HTML_FIRST}?x\n=1"),
        (HTML_FIRST, f"{HTML_FIRST}?cursor=a?x=1"),
        (HTML_FIRST, f"{HTML_FIRST}/?cursor=1"),
        (f"{HTML_FIRST}#top", f"{HTML_FIRST}#top?x=1"),
        (FIRST, f"{FIRST}?max_id=9"),
        (FIRST, f"{FIRST}&x=1"),
    ],
)
def test_a_first_url_and_a_query_is_read_as_a_split_url_reads(first: str, url: str) -> None:
    """A page's URL that is its list's first URL and a query is compared without being
    split (the HTML source's pages), with the answer splitting it gives."""
    paging = TwitterMobileSource.paging_params
    for case_blind in (False, True):
        quick = other_list(first, url, paging, case_blind=case_blind)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(base, "_query_added", lambda first, url: None)
            split = other_list(first, url, paging, case_blind=case_blind)
        assert quick == split


def test_a_lists_first_url_is_read_once_for_all_its_pages() -> None:
    """The HTML source checks a page of 20 names at a time against the first page."""
    first = "https://m.example/api/v1/accounts/4242/following?limit=80"
    base._first_parts.cache_clear()
    for k in range(5):
        assert other_list(first, f"{first}&max_id={k}", PAGING) is None
    assert other_list(first, first.replace("4242", "4243"), PAGING) is not None
    assert base._first_parts.cache_info().misses == 1


def test_screen_names_ignore_letter_case_on_the_mobile_site() -> None:
    source = TwitterMobileSource("http://site.test")
    first = "http://site.test/Ada/following"
    later = "http://site.test/ada/following?cursor=5"
    assert other_list(first, later, source.paging_params, case_blind=True) is None
    assert other_list(first, later, source.paging_params) is not None


def _mobile_page(more_href: str, extra: str = "") -> bytes:
    item = (
        '<table class="user-item"><tr><td class="screenname"><a name="grace_h"></a>'
        '<span class="username">@grace_h</span></td></tr></table>'
    )
    more = f'<div class="w-button-more"><a href="{more_href}">Show more people</a></div>'
    page = f'<html><body><div class="user-list">{item}{extra}</div>{more}</body></html>'
    return page.encode()


@pytest.mark.parametrize(
    "href",
    [
        "/ada_example/following?cursor=7",
        "/ADA_EXAMPLE/following/?cursor=7",
        "https://mirror.test/base/ada_example/following?lang=en&cursor=7",
        "?cursor=7",
    ],
)
def test_a_mobile_next_link_on_the_users_list_gives_its_cursor(href: str) -> None:
    page = parse_mobile(_mobile_page(href), status=200, owner="ada_example")
    assert page.next_cursor == "7"


@pytest.mark.parametrize(
    ("href", "says"),
    [
        ("/someone_else/following?cursor=7", "names another account or endpoint"),
        ("/ada_example/followers?cursor=7", "names another account or endpoint"),
        ("http://[::1/ada_example/following?cursor=7", "is not a valid URL"),
    ],
)
def test_a_mobile_next_link_elsewhere_is_refused(href: str, says: str) -> None:
    with pytest.raises(ParseError, match=f"next page link {says}"):
        parse_mobile(_mobile_page(href), status=200, owner="ada_example")


_GHOST = (
    '<table class="user-item"><tr><td class="screenname"><a name="ghost"></a></td></tr></table>'
)


@pytest.mark.parametrize(
    "hidden",
    [
        f"<noscript>{_GHOST}</noscript>",
        f'<NOSCRIPT class="x">{_GHOST}</NOSCRIPT>',
        f"<template>{_GHOST}</template>",
    ],
)
def test_markup_a_browser_does_not_show_is_not_read(hidden: str) -> None:
    page = parse_mobile(_mobile_page("?cursor=7", hidden), status=200, owner="ada_example")
    assert page.names == ("grace_h",)


def test_a_friend_in_a_noscript_of_the_head_is_not_read() -> None:
    # With scripting off a parser would close <head> at the table and read it as body.
    head = f"<html><head><noscript>{_GHOST}</noscript></head>".encode()
    body = _mobile_page("?cursor=7").replace(b"<html>", head)
    assert parse_mobile(body, status=200).names == ("grace_h",)


def test_a_mastodon_link_that_is_no_url_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="next link is not a valid URL"):
        parse_mastodon(
            b"[]",
            status=200,
            url=FIRST,
            link='<https://m.example:99999/x>; rel="next"',
            instance="m.example",
        )


def _config() -> HttpConfig:
    return http_config(Settings(fetch_attempts=1))


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("http://upstream.test:99999/x", "Port out of range"),
        ("http://upstream.test:-1/x", "Port out of range"),
        ("http://[::1", "Invalid IPv6 URL"),
    ],
)
async def test_a_redirect_to_an_invalid_url_is_a_permanent_fetch_error(
    mock_http: Any, location: str, says: str
) -> None:
    url = "http://upstream.test/ada/following"
    mock_http.get(url, status=302, headers={"Location": location})
    async with HttpClient(_config()) as http:
        with pytest.raises(PermanentFetchError, match=f"redirect to an invalid URL.*{says}"):
            await http.fetch(PageRequest(url))


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://upstream.test:99999/", "ftp://upstream.test/", "relative"]
)
async def test_a_request_for_an_invalid_url_is_a_permanent_fetch_error(url: str) -> None:
    async with HttpClient(_config()) as http:
        with pytest.raises(PermanentFetchError, match="not a valid URL"):
            await http.fetch(PageRequest(url))
