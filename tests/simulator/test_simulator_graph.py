"""The synthetic graph: determinism, realistic shapes, lookups, truth and the users file."""

from __future__ import annotations

import csv
import re
import statistics
from pathlib import Path

import pytest

from friendscrape.simulator import (
    HOSTILE_ACCOUNTS,
    AccountKind,
    SimConfig,
    SyntheticGraph,
    write_users_csv,
)

NAME = re.compile(r"[A-Za-z0-9_]{1,15}")


def test_same_seed_gives_the_same_graph_and_another_seed_does_not() -> None:
    first, again, other = SyntheticGraph(300), SyntheticGraph(300), SyntheticGraph(300, seed=8)
    accounts = list(first.accounts())
    assert accounts == list(again.accounts())
    assert accounts != list(other.accounts())
    for account in accounts[:50]:
        assert first.friends(account.screen_name) == again.friends(account.screen_name)


def test_a_smaller_graph_is_a_prefix_of_a_larger_one() -> None:
    small = list(SyntheticGraph(100).accounts())
    assert small == list(SyntheticGraph(250).accounts())[:100]


def test_following_counts_look_like_real_accounts() -> None:
    graph = SyntheticGraph(5000, mean_friends=550.0)
    counts = [account.following_count for account in graph.accounts()]
    assert len(counts) == 5000
    assert abs(statistics.mean(counts) - 550.0) < 0.15 * 550.0
    above = sum(count > 2000 for count in counts) / len(counts)
    zero = sum(count == 0 for count in counts) / len(counts)
    assert 0.02 <= above <= 0.07
    assert 0.015 <= zero <= 0.05


def test_mean_follows_the_target() -> None:
    counts = [a.following_count for a in SyntheticGraph(5000, mean_friends=120.0).accounts()]
    assert abs(statistics.mean(counts) - 120.0) < 0.15 * 120.0


def test_kinds_come_in_realistic_shares() -> None:
    accounts = list(SyntheticGraph(20_000).accounts())
    shares = {kind: sum(a.kind is kind for a in accounts) / len(accounts) for kind in AccountKind}
    assert 0.015 <= shares[AccountKind.PROTECTED] <= 0.025
    assert 0.006 <= shares[AccountKind.SUSPENDED] <= 0.014
    assert 0.006 <= shares[AccountKind.NOT_FOUND] <= 0.014
    assert 0.002 <= shares[AccountKind.INVALID] <= 0.008
    assert shares[AccountKind.TRUNCATED] == 0


def test_ids_are_distinct_numbers_and_names_valid_unless_invalid() -> None:
    accounts = list(SyntheticGraph(20_000).accounts())
    ids = [a.user_id for a in accounts]
    assert len(set(ids)) == len(ids)
    assert all(i.isdigit() and int(i) < 2**63 for i in ids)
    assert any(len(i) >= 18 for i in ids)
    assert len({a.screen_name.casefold() for a in accounts}) == len(accounts)
    for account in accounts:
        valid = NAME.fullmatch(account.screen_name) is not None
        assert valid == (account.kind is not AccountKind.INVALID), account


def test_lookup_by_screen_name_ignores_case_and_rejects_strangers() -> None:
    graph = SyntheticGraph(500)
    for account in graph.accounts():
        assert graph.account(account.screen_name) == account
        assert graph.account(account.screen_name.swapcase()) == account
    ok = next(a for a in graph.accounts() if a.kind is AccountKind.OK and a.following_count)
    for friend in graph.friends(ok.screen_name):
        found = graph.account(friend)
        assert found is None or found.screen_name == friend
    for name in ["", "x", "nobody_here", "a" * 40, "h\u00e9llo", "_sim"]:
        assert graph.account(name) is None
    assert graph.account("zz_truncated") is None


def test_friend_lists_are_distinct_valid_names_and_match_the_count() -> None:
    graph = SyntheticGraph(300)
    for account in graph.accounts():
        friends = graph.friends(account.screen_name)
        if account.kind is not AccountKind.OK:
            assert friends == []
            continue
        assert len(friends) == account.following_count
        assert len({f.casefold() for f in friends}) == len(friends)
        assert all(NAME.fullmatch(f) for f in friends)


def test_follows_agrees_with_the_list() -> None:
    graph = SyntheticGraph(50)
    account = max(graph.accounts(), key=lambda a: a.following_count)
    friends = graph.friends(account.screen_name)
    assert all(graph.follows(account, name) for name in friends)
    outsiders = [graph.name_of(n) for n in range(2000)]
    assert sum(graph.follows(account, name) for name in outsiders) < 20


def test_expected_gives_each_status() -> None:
    graph = SyntheticGraph(3000, hostile=True)
    by_kind = {a.kind: a for a in graph.accounts()}
    wanted = {
        AccountKind.OK: "ok",
        AccountKind.PROTECTED: "protected",
        AccountKind.SUSPENDED: "suspended",
        AccountKind.NOT_FOUND: "not_found",
        AccountKind.INVALID: "invalid",
    }
    for kind, status in wanted.items():
        truth = graph.expected(by_kind[kind].screen_name)
        assert truth["status"] == status
        assert truth["user_id"] == by_kind[kind].user_id
    ok = by_kind[AccountKind.OK]
    assert graph.expected(ok.screen_name)["friends"] == graph.friends(ok.screen_name)
    assert graph.expected("no_such_user")["status"] == "not_found"
    assert graph.expected("has-dash")["status"] == "invalid"


def test_hostile_accounts_must_fail() -> None:
    graph = SyntheticGraph(100, hostile=True)
    hostile = [a for a in graph.accounts() if a.hostile]
    assert {a.screen_name for a in hostile} == set(HOSTILE_ACCOUNTS)
    assert len(graph) == 100 + len(HOSTILE_ACCOUNTS)
    for account in hostile:
        truth = graph.expected(account.screen_name)
        assert truth["status"] == "failed"
        assert truth["friends"] == []
        assert truth["reason"]
        assert NAME.fullmatch(account.screen_name)
    assert not any(a.hostile for a in SyntheticGraph(100).accounts())


def test_users_csv_lists_every_account_with_some_counts_left_empty(tmp_path: Path) -> None:
    graph = SyntheticGraph(1000, hostile=True)
    path = tmp_path / "users.csv"
    assert write_users_csv(graph, path) == len(graph)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["user_id", "screen_name", "following_count"]
    assert [r["screen_name"] for r in rows] == [a.screen_name for a in graph.accounts()]
    empty = sum(r["following_count"] == "" for r in rows)
    assert 0 < empty < len(rows) // 3
    for row, account in zip(rows, graph.accounts(), strict=True):
        assert row["user_id"] == account.user_id
        assert row["following_count"] in {"", str(account.following_count)}


def test_bluesky_users_csv_gives_the_same_following_hints(tmp_path: Path) -> None:
    """The bluesky form carries the counts the default form does (about 15 % empty), so
    a plan by pages weighs its users by their lists, not all alike."""
    graph = SyntheticGraph(1000)
    default, bsky = tmp_path / "users.csv", tmp_path / "bsky.csv"
    write_users_csv(graph, default)
    write_users_csv(graph, bsky, "bluesky")
    with (
        default.open(newline="", encoding="utf-8") as a,
        bsky.open(newline="", encoding="utf-8") as b,
    ):
        hints = [r["following_count"] for r in csv.DictReader(a)]
        counts = [r["following_count"] for r in csv.DictReader(b)]
    # An invalid handle names no account: no count, as before.
    valid = [a.kind is not AccountKind.INVALID for a in graph.accounts()]
    assert [c for c, ok in zip(counts, valid, strict=True) if ok] == [
        h for h, ok in zip(hints, valid, strict=True) if ok
    ]
    assert 0 < counts.count("") < len(counts) // 3


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        ("x-api", r"\d+"),
        ("bluesky", r"[a-z0-9-]+\.bsky\.social"),
        ("mastodon", r"\d+@[a-z0-9.-]+"),
    ],
)
def test_users_csv_in_each_api_sources_form(tmp_path: Path, source: str, pattern: str) -> None:
    graph = SyntheticGraph(200)
    path = tmp_path / "users.csv"
    assert write_users_csv(graph, path, source) == len(graph)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    column = "user_id" if source == "x-api" else "screen_name"
    valid = [r for r, a in zip(rows, graph.accounts(), strict=True) if a.kind.value != "invalid"]
    assert valid
    assert all(re.fullmatch(pattern, r[column]) for r in valid), valid[:3]


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"error_rate": 0.6, "drop_rate": 0.6},
        {"latency": -1.0},
        {"page_size": 0},
        {"retry_after": -1},
    ],
)
def test_config_refuses_impossible_settings(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        SimConfig(**changes)  # type: ignore[arg-type]
