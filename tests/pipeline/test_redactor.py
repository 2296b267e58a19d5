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


def test_a_lists_joined_text_is_searched_and_dropped_once_a_list_is_redacted() -> None:
    names = ("ada", f"x{SECRET}y")
    ids = ("1", "2")
    joined = ("ada\nx" + SECRET + "y", "1\n2")
    clean = Redactor({SECRET: "[redacted token#1]"}).fields(
        {"friend_names": names, "friend_ids": ids, "joined": joined}
    )
    assert clean["friend_names"] == ("ada", "x[redacted token#1]y")
    assert clean["joined"] is None  # the store joins the redacted list itself


def test_a_joined_text_without_secrets_is_kept_and_not_joined_again() -> None:
    names = tuple(f"user_{n}" for n in range(1000))
    joined = ("\n".join(names), "")
    clean = Redactor({SECRET: "[redacted token#1]"}).fields(
        {"friend_names": names, "joined": joined}
    )
    assert clean["joined"] is joined
    # The search reads the joined text it is given: a secret only there is found.
    planted = (f"user_0\n{SECRET}", "")
    clean = Redactor({SECRET: "[redacted token#1]"}).fields(
        {"friend_names": names, "joined": planted}
    )
    assert clean["joined"] is None
