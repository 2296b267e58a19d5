"""The redactor of saved results: a secret in any one of a thousand friend names is
replaced, and names that only hold a secret between them are left as they are."""

from __future__ import annotations

from friendscrape.core.redaction import Redactor

SECRET = "AAAA-secret-token-BBBB"


def test_a_secret_in_one_name_of_a_thousand_is_replaced_there_only() -> None:
    names = tuple(f"user_{n}" for n in range(1000))
    echoed = (*names[:500], f"x{SECRET}y", *names[500:])
    clean = Redactor({SECRET: "[redacted token#1]"}).fields(
        {"friend_names": echoed, "error": None, "friend_ids": ()}
    )
    assert clean["friend_names"] == (*names[:500], "x[redacted token#1]y", *names[500:])
    assert clean["error"] is None
    assert clean["friend_ids"] == ()


def test_names_holding_a_secret_only_when_joined_are_kept_unchanged() -> None:
    halves = ("AAAA-secret", "-token-BBBB")
    for joint in ("", "\n"):
        secret = joint.join(halves)
        clean = Redactor({secret: "[redacted x]"}).fields({"friend_names": halves})
        assert clean["friend_names"] == halves


def test_a_list_without_secrets_comes_back_equal() -> None:
    names = tuple(f"user_{n}" for n in range(1000))
    clean = Redactor({SECRET: "[redacted token#1]"}).fields({"friend_names": names})
    assert clean["friend_names"] == names
