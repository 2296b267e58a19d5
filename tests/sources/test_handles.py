"""Handles: which forms each source takes, the look-up requests, and their answers."""

from __future__ import annotations

import json

import pytest

from friendscrape.errors import CredentialsRejectedError, ParseError
from friendscrape.fetch.wire import RawResponse
from friendscrape.models import Resolution, Status, User
from friendscrape.sources.mastodon import MastodonSource, parse_handle
from friendscrape.sources.x_api import XApiSource


@pytest.mark.parametrize(
    "ref",
    ["@alice@mastodon.social", "alice@Mastodon.Social", "https://mastodon.social/@alice"],
)
def test_mastodon_takes_the_three_handle_forms_and_looks_up_on_the_instance(ref: str) -> None:
    source = MastodonSource()
    user = User(ref, ref)
    assert parse_handle(ref) == ("alice", "mastodon.social")
    assert source.check_user(user) is None
    assert source.needs_lookup(user)
    request = source.lookup_request([user])
    assert request.url == "https://mastodon.social/api/v1/accounts/lookup?acct=alice"
    with pytest.raises(ValueError, match="not looked up"):
        source.page_request(user, None)
    found = User(ref, ref, resolved_id="109")
    assert not source.needs_lookup(found)
    first = source.page_request(found, None)
    assert first.url == "https://mastodon.social/api/v1/accounts/109/following?limit=80"


def test_mastodon_numeric_id_at_instance_needs_no_lookup() -> None:
    source = MastodonSource()
    user = User("1", "109302436954721982@mastodon.social")
    assert source.check_user(user) is None
    assert not source.needs_lookup(user)


def _mastodon_answer(status: int, doc: object) -> RawResponse:
    url = "https://mastodon.social/api/v1/accounts/lookup?acct=alice"
    return RawResponse(url, status, {}, json.dumps(doc).encode())


def test_mastodon_lookup_answers() -> None:
    source = MastodonSource()
    user = User("u", "@alice@mastodon.social")
    found = source.parse_lookup([user], _mastodon_answer(200, {"id": "109", "acct": "alice"}))
    assert found == {"u": Resolution("109")}
    gone = source.parse_lookup([user], _mastodon_answer(404, {"error": "Record not found"}))
    assert gone["u"].status is Status.NOT_FOUND
    assert gone["u"].account_id is None
    suspended = source.parse_lookup([user], _mastodon_answer(410, {"error": "suspended"}))
    assert suspended["u"].status is Status.SUSPENDED
    with pytest.raises(ParseError):  # a proxy's 404 page is not the platform's answer
        source.parse_lookup([user], RawResponse("https://x/", 404, {}, b"<html>"))


def test_x_api_usernames_are_looked_up_a_hundred_at_a_time() -> None:
    source = XApiSource()
    users = [User(f"@name{i}", f"name{i}") for i in range(100)]
    assert all(source.check_user(u) is None and source.needs_lookup(u) for u in users)
    request = source.lookup_request(users)
    assert request.url.startswith("https://api.x.com/2/users/by?usernames=name0,name1,")
    with pytest.raises(ValueError, match="1 to 100"):
        source.lookup_request([*users, User("more", "more")])
    assert not source.needs_lookup(User("783214", "someone"))


def test_x_api_lookup_answer_gives_ids_and_statuses() -> None:
    source = XApiSource()
    users = [User("Alice", "Alice"), User("gone", "gone"), User("banned", "banned")]
    problems = "https://api.twitter.com/2/problems/resource-not-found"
    doc = {
        "data": [{"id": "12", "name": "A", "username": "alice"}],
        "errors": [
            {"value": "gone", "title": "Not Found Error", "type": problems, "detail": "no"},
            {
                "value": "banned",
                "title": "Forbidden",
                "type": problems,
                "detail": "User has been suspended: [banned].",
            },
        ],
    }
    response = RawResponse("https://api.x.com/2/users/by", 200, {}, json.dumps(doc).encode())
    found = source.parse_lookup(users, response)
    assert found["Alice"] == Resolution("12")
    assert found["gone"].status is Status.NOT_FOUND
    assert found["banned"].status is Status.SUSPENDED
    # A username the answer forgets fails alone, with the reason, never a silent skip;
    # the others of the batch keep what the answer says of them.
    found = source.parse_lookup([*users, User("other", "other")], response)
    assert found["other"].status is Status.FAILED
    assert found["other"].account_id is None
    assert found["other"].detail is not None
    assert "the answer says nothing of username 'other'" in found["other"].detail
    assert found["Alice"] == Resolution("12")
    assert found["gone"].status is Status.NOT_FOUND
    refused = RawResponse("https://api.x.com/2/users/by", 401, {}, b"{}")
    with pytest.raises(CredentialsRejectedError):
        source.parse_lookup(users, refused)
    looked_up = User("Alice", "Alice", resolved_id="12")
    url = source.page_request(looked_up, None).url
    assert url == "https://api.x.com/2/users/12/following?max_results=1000"
