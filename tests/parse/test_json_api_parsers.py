"""Tests of the X API v2, Bluesky and Mastodon parsers on recorded and edited responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from friendscrape.errors import ParseError
from friendscrape.models import Page, Status
from friendscrape.parse import bluesky, mastodon, x_api

FIXTURES = Path(__file__).parent.parent / "fixtures"
URL = "https://api.example/page"


def fixture(folder: str, name: str) -> bytes:
    return (FIXTURES / folder / name).read_bytes()


# -- X API v2 ----------------------------------------------------------------------------


def test_x_first_page_gives_usernames_ids_and_next_token() -> None:
    page = x_api.parse_following_page(fixture("x-api-v2", "following_page1.json"), status=200)
    assert page == Page(
        names=("XDevelopers", "X"), ids=("2244994945", "783214"), next_cursor="DFEDBNRFT3MHCZZZ"
    )


def test_x_last_page_has_no_next_token() -> None:
    page = x_api.parse_following_page(fixture("x-api-v2", "following_page2_last.json"), status=200)
    assert page.names == ("API",)
    assert page.ids == ("6253282",)
    assert page.next_cursor is None
    assert page.following_count is None


def test_x_user_following_nobody_has_an_empty_list() -> None:
    page = x_api.parse_following_page(fixture("x-api-v2", "following_none.json"), status=200)
    assert page == Page()


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("error_not_found.json", Status.NOT_FOUND, "Could not find user"),
        ("error_suspended.json", Status.SUSPENDED, "User has been suspended"),
        ("error_protected.json", Status.PROTECTED, "not authorized"),
    ],
)
def test_x_user_problems_become_statuses(name: str, status: Status, words: str) -> None:
    page = x_api.parse_following_page(fixture("x-api-v2", name), status=200, url=URL)
    assert page.status is status
    assert page.names == ()
    assert page.detail is not None
    assert words in page.detail


def test_x_unknown_problem_is_an_error_with_its_words() -> None:
    body = json.dumps(
        {"errors": [{"type": "https://api.x.com/2/problems/usage-capped", "detail": "Cap hit"}]}
    ).encode()
    with pytest.raises(ParseError, match=r"usage-capped.*Cap hit") as err:
        x_api.parse_following_page(body, status=200, url=URL)
    assert err.value.url == URL


def test_x_errors_beside_data_concern_expansions_not_the_user() -> None:
    doc = json.loads(fixture("x-api-v2", "following_page1.json"))
    doc["errors"] = [{"type": "https://api.x.com/2/problems/resource-not-found", "detail": "tw"}]
    page = x_api.parse_following_page(json.dumps(doc).encode(), status=200)
    assert page.status is Status.OK
    assert len(page.names) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"data": [{"id": "1", "username": "a"}], "meta": {"result_cou',
        b"[]",
        b'{"data": [{"id": "1", "username": "a"}]}',
        b'{"data": [{"id": "x1", "username": "a"}], "meta": {"result_count": 1}}',
        b'{"data": [{"id": "1", "username": "bad-name"}], "meta": {"result_count": 1}}',
        b'{"data": [{"id": "1"}], "meta": {"result_count": 1}}',
        b'{"data": [{"id": "1", "username": "a"}], "meta": {"result_count": 2}}',
        b'{"data": {"id": "1"}, "meta": {"result_count": 1}}',
        b'{"data": [], "meta": {"next_token": ""}}',
    ],
)
def test_x_malformed_pages_are_errors_never_short_lists(body: bytes) -> None:
    with pytest.raises(ParseError):
        x_api.parse_following_page(body, status=200, url=URL)


def test_x_unexpected_status_keeps_the_problem_words() -> None:
    with pytest.raises(ParseError, match=r"HTTP status 400.*Invalid Request - bad max_results"):
        x_api.parse_following_page(
            b'{"title": "Invalid Request", "detail": "bad max_results"}', status=400
        )


@pytest.mark.parametrize("value", ["1", "783214", "18446744073709551615"])
def test_x_user_ids_are_numbers(value: str) -> None:
    assert x_api.is_valid_user_id(value)


@pytest.mark.parametrize("value", ["", "0", "01", "12a", "18446744073709551616", "-1", " 1"])
def test_x_other_user_ids_are_refused(value: str) -> None:
    assert not x_api.is_valid_user_id(value)


# -- Bluesky -----------------------------------------------------------------------------


def test_bluesky_first_page_gives_handles_dids_and_cursor() -> None:
    page = bluesky.parse_follows_page(
        fixture("bluesky", "getFollows_page1.json"), status=200, actor="atproto.com"
    )
    assert page.names == ("bsky.app", "jay.bsky.team")
    assert page.ids == ("did:plc:z72i7hdynmk6r22z27h6tvur", "did:plc:oky5czdrnfjpqslsw2a5iclo")
    assert page.next_cursor == "3kl2yewbqy22q"
    assert page.following_count is None  # a profileView carries no counts


def test_bluesky_last_page_by_did() -> None:
    page = bluesky.parse_follows_page(
        fixture("bluesky", "getFollows_page2_last.json"),
        status=200,
        actor="did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    )
    assert page.names == ("why.bsky.team",)
    assert page.next_cursor is None


def test_bluesky_subject_follows_count_is_the_following_count() -> None:
    doc = json.loads(fixture("bluesky", "getFollows_page1.json"))
    doc["subject"]["followsCount"] = 3
    page = bluesky.parse_follows_page(json.dumps(doc).encode(), status=200, actor="ATPROTO.com")
    assert page.following_count == 3


def test_bluesky_page_about_another_account_is_an_error() -> None:
    with pytest.raises(ParseError, match=r"not 'alice\.example\.com'"):
        bluesky.parse_follows_page(
            fixture("bluesky", "getFollows_page1.json"), status=200, actor="alice.example.com"
        )


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("error_not_found.json", Status.NOT_FOUND, "Profile not found"),
        ("error_suspended.json", Status.SUSPENDED, "AccountTakedown"),
        ("error_deactivated.json", Status.DEACTIVATED, "AccountDeactivated"),
    ],
)
def test_bluesky_xrpc_errors_become_statuses(name: str, status: Status, words: str) -> None:
    page = bluesky.parse_follows_page(fixture("bluesky", name), status=400, actor="a.example")
    assert page.status is status
    assert page.detail is not None
    assert words in page.detail


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": "BlockedByActor", "message": "Requester is blocked by actor"}',
        b'{"error": "InvalidRequest", "message": "Error: limit must be <= 100"}',
        b'{"message": "no name"}',
    ],
)
def test_bluesky_unknown_errors_fail_with_the_message_kept(body: bytes) -> None:
    with pytest.raises(ParseError) as err:
        bluesky.parse_follows_page(body, status=400, url=URL, actor="a.example")
    message = json.loads(body)["message"]
    assert message in str(err.value)


@pytest.mark.parametrize(
    "doc",
    [
        {"follows": []},
        {"subject": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "atproto.com"}},
        {
            "subject": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "atproto.com"},
            "follows": [{"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}],
        },
        {
            "subject": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "atproto.com"},
            "follows": [{"did": "plc:x", "handle": "a.example"}],
        },
        {
            "subject": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "atproto.com"},
            "follows": [{"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "under_score.com"}],
        },
    ],
)
def test_bluesky_malformed_pages_are_errors(doc: dict[str, object]) -> None:
    with pytest.raises(ParseError):
        bluesky.parse_follows_page(json.dumps(doc).encode(), status=200, actor="atproto.com")


@pytest.mark.parametrize(
    "actor",
    [
        "alice.bsky.social",
        "atproto.com",
        "xn--ls8h.example",
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "did:web:example.com",
        "did:web:localhost.example%3A8080",
    ],
)
def test_bluesky_actors(actor: str) -> None:
    assert bluesky.is_valid_actor(actor)


@pytest.mark.parametrize(
    "actor",
    [
        "",
        "alice",
        "@alice.bsky.social",
        "alice_x.bsky.social",
        "-alice.bsky.social",
        "alice..bsky.social",
        "alice.bsky.123",
        "did:plc:ewvi7nxzyoun6zhxrhs64oi",
        "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ",
        "did:plc:ewvi7nxzyoun6zhxrhs64oi1",
        "did:web:",
        "did:key:z6Mk",
        "a/b.example",
    ],
)
def test_bluesky_impossible_actors(actor: str) -> None:
    assert not bluesky.is_valid_actor(actor)


# -- Mastodon ----------------------------------------------------------------------------

M_URL = "https://mastodon.social/api/v1/accounts/1/following?limit=2"


def test_mastodon_first_page_names_accounts_with_their_instance() -> None:
    link = fixture("mastodon", "following_page1.link").decode().strip()
    page = mastodon.parse_following_page(
        fixture("mastodon", "following_page1.json"),
        status=200,
        url=M_URL,
        link=link,
        instance="mastodon.social",
    )
    assert page.names == ("Gargron@mastodon.social", "mastodonusercount@bitcoinhackers.org")
    assert page.ids == ("109302436954721982@mastodon.social", "108194863260762493@mastodon.social")
    assert page.next_cursor == (
        "https://mastodon.social/api/v1/accounts/1/following?limit=2&max_id=7163058"
    )


def test_mastodon_last_page_has_no_next_link() -> None:
    page = mastodon.parse_following_page(
        fixture("mastodon", "following_page2_last.json"),
        status=200,
        url=M_URL,
        link='<https://mastodon.social/api/v1/accounts/1/following?since_id=9>; rel="prev"',
        instance="mastodon.social",
    )
    assert page.names == ("Gargron2@mastodon.social",)
    assert page.next_cursor is None


def test_mastodon_hidden_network_is_ok_and_empty() -> None:
    page = mastodon.parse_following_page(
        fixture("mastodon", "hidden_network.json"), status=200, instance="mastodon.social"
    )
    assert page == Page()


@pytest.mark.parametrize(
    ("name", "code", "status", "words"),
    [
        ("error_not_found.json", 404, Status.NOT_FOUND, "Record not found"),
        ("error_suspended.json", 410, Status.SUSPENDED, "HTTP 410"),
    ],
)
def test_mastodon_statuses(name: str, code: int, status: Status, words: str) -> None:
    page = mastodon.parse_following_page(
        fixture("mastodon", name), status=code, instance="mastodon.social"
    )
    assert page.status is status
    assert page.detail is not None
    assert words in page.detail


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body><h1>404 Not Found</h1><hr>nginx</body></html>", b'{"error": "Nope"}'],
)
def test_mastodon_404_without_record_not_found_is_a_parse_error_not_not_found(
    body: bytes,
) -> None:
    # A proxy's or a wrong path's 404 says nothing about the account.
    with pytest.raises(ParseError, match="not Mastodon's 'Record not found' answer"):
        mastodon.parse_following_page(
            body, status=404, url="https://a.example/x", instance="a.example"
        )


def test_mastodon_instance_refusing_anonymous_access_fails_the_user() -> None:
    with pytest.raises(ParseError, match="authenticated user"):
        mastodon.parse_following_page(
            fixture("mastodon", "error_unauthorized.json"), status=401, instance="a.example"
        )


def test_mastodon_next_link_to_another_host_is_not_followed() -> None:
    with pytest.raises(ParseError, match="leaves the instance"):
        mastodon.parse_following_page(
            b"[]",
            status=200,
            url=M_URL,
            link='<https://evil.example/api/v1/accounts/1/following?max_id=1>; rel="next"',
            instance="mastodon.social",
        )


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'[{"id": "1"}]',
        b'[{"id": "1 2", "acct": "a"}]',
        b'[{"id": "1", "acct": "a b"}]',
        b'[{"id": "1", "acct": "a"}',
        b"[1]",
    ],
)
def test_mastodon_malformed_pages_are_errors(body: bytes) -> None:
    with pytest.raises(ParseError):
        mastodon.parse_following_page(body, status=200, instance="mastodon.social")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (None, None),
        ('<https://a.example/x?max_id=1>; rel="next"', "https://a.example/x?max_id=1"),
        ("<https://a.example/p>; rel=prev, <https://a.example/n>; rel=next", "https://a.example/n"),
        ('<https://a.example/n>; title="x"; rel="prev next"', "https://a.example/n"),
        ('<https://a.example/p>; rel="prev"', None),
    ],
)
def test_mastodon_link_header(link: str | None, expected: str | None) -> None:
    assert mastodon.next_link(link) == expected
