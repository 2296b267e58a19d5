"""`friendscrape estimate` as users run it (a new process each): what would meet the goals
when nothing does, with figures that work when passed back, and the sources' limits."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from friendscrape.commands.estimate.advice import round_up_days
from friendscrape.commands.estimate.limits import LIMITS, source_bound
from reliability.harness import clean_env

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", "estimate", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _json(*args: str, **env: str) -> dict[str, Any]:
    done = _cli(*args, "--json", **env)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _documented_example() -> list[str]:
    """The first `friendscrape estimate --users ...` command of docs/monitoring.md."""
    text = (DOCS / "monitoring.md").read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.search(r"friendscrape estimate (--users [^\n#]+)", text)
    assert found, "docs/monitoring.md shows no estimate example"
    return shlex.split(found.group(1))


def _meets(doc: dict[str, Any], deadline: float, budget: float | None) -> None:
    best = doc["best"]
    assert best is not None, doc["advice"]
    assert best["days"] <= deadline
    if budget is not None:
        assert best["cost_usd"] <= budget


def _option(args: list[str], name: str, value: str) -> list[str]:
    """``args`` with ``name`` set to ``value`` (replaced, or added)."""
    out = list(args)
    if name in out:
        out[out.index(name) + 1] = value
    else:
        out += [name, value]
    return out


def test_the_documented_example_says_what_would_meet_it_and_each_figure_works() -> None:
    args = _documented_example()
    deadline = float(args[args.index("--deadline-days") + 1])
    budget = float(args[args.index("--budget") + 1])
    text = _cli(*args)
    assert text.returncode == 0, text.stderr
    assert f"no tier meets {deadline:g} days and ${budget:,.0f}; what would:" in text.stdout
    assert "more money: $375 meets 10 days (45 x standard-1x" in text.stdout
    assert "more time: allow 450 days" in text.stdout
    assert "bound by the workers" in text.stdout
    # The example sizes a job on a platform live today, and the doc shows what it prints.
    assert args[args.index("--source") + 1] in {"bluesky", "x-api", "mastodon"}
    shown = (DOCS / "monitoring.md").read_text(encoding="utf-8")
    bound = next(line for line in text.stdout.splitlines() if line.startswith("bound by"))
    assert f"    {bound}\n" in shown

    doc = _json(*args)
    assert doc["best"] is None
    money, days = doc["advice"]["more_money"], doc["advice"]["more_days"]
    assert money["budget_usd"] > budget
    assert days["deadline_days"] > deadline
    # Passed back, each suggestion finds a plan that meets it.
    _meets(_json(*_option(args, "--budget", f"{money['budget_usd']:g}")), deadline, None)
    again = _json(*_option(args, "--budget", f"{money['budget_usd']:g}"))
    assert again["best"]["cost_usd"] <= money["budget_usd"]
    assert again["best"]["workers"] == money["workers"]
    _meets(_json(*_option(args, "--deadline-days", f"{days['deadline_days']:g}")), 450, budget)


def test_more_workers_than_a_tier_allows_is_suggested_and_works_once_allowed(
    tmp_path: Path,
) -> None:
    def tiers(max_workers: int) -> str:
        path = tmp_path / f"tiers{max_workers}.json"
        tier = {"name": "small", "memory_mb": 512, "usd_per_month": 30, "max_workers": max_workers}
        path.write_text(json.dumps({"tiers": [tier]}))
        return str(path)

    args = ["--users", "1000000", "--rate", "10000", "--deadline-days", "10", "--budget", "500"]
    doc = _json(*args, "--tiers", tiers(5))
    assert doc["best"] is None
    more = doc["advice"]["more_workers"]
    assert more == {**more, "tier": "small", "workers": 10}
    assert doc["advice"]["max_workers"] == 5
    text = _cli(*args, "--tiers", tiers(5)).stdout
    assert "more workers: 10 x small would meet both" in text
    assert "the tiers file allows 5" in text
    _meets(_json(*args, "--tiers", tiers(more["workers"])), 10, 500)


def test_x_api_is_bound_by_the_token_quota_and_more_tokens_meet_the_deadline() -> None:
    args = ["--users", "3600000", "--rate", "8000", "--deadline-days", "10", "--source", "x-api"]
    text = _cli(*args, "--tokens", "25").stdout
    assert (
        "bound by the token quota (25 tokens x 15 requests/15 min = 36,000 users/day "
        "at 1 request a user), not by the workers"
    ) in text
    assert "too slow (the token quota)" in text
    doc = _json(*args, "--tokens", "25")
    # docs/sources.md: 3.6 million users take 2,500 token-days, 25 tokens for 100 days.
    assert min(p["days"] for p in doc["tiers"]) == pytest.approx(100)
    tokens = doc["advice"]["more_tokens"]
    assert tokens == 250
    assert doc["advice"]["tokens_plan"]["days"] <= 10
    _meets(_json(*args, "--tokens", str(tokens)), 10, None)
    # A fleet is not sped up past the quota: the workers stop where they would idle.
    assert all(p["workers_run"] <= 5 for p in doc["tiers"])  # 36,000 / 8,000 a worker


def test_x_api_counts_the_configured_tokens_and_never_prints_one() -> None:
    secrets = ["sekrit-token-AAAA", "sekrit-token-BBBB", "sekrit-token-CCCC"]
    env = {"FRIENDSCRAPE_X_BEARER_TOKENS": ",".join(secrets)}
    args = ["--users", "100000", "--rate", "8000", "--source", "x-api"]
    done = _cli(*args, **env)
    assert done.returncode == 0, done.stderr
    assert "3 tokens x 15 requests/15 min = 4,320 users/day" in done.stdout
    as_json = _cli(*args, "--json", **env)
    for secret in secrets:
        assert secret not in done.stdout + done.stderr + as_json.stdout + as_json.stderr
    assert json.loads(as_json.stdout)["source"]["tokens"] == 3


def test_sources_doc_arithmetic_matches_the_limits_table() -> None:
    x_api = LIMITS["x-api"]
    assert x_api.per_day == 96 * 15 == 1440  # 96 windows of 15 minutes a day
    assert 3_600_000 / x_api.per_day == 2500  # token-days, as docs/sources.md says
    doc = (DOCS / "sources.md").read_text(encoding="utf-8")
    assert "about 2,500 token-days" in doc
    for limit in LIMITS.values():
        if limit.doc_url:
            assert limit.doc_url in doc, limit.source
    # Bluesky: 3,000 per 5 minutes is 864,000 a day; 150 follows take 2 pages of 100.
    bluesky = source_bound(
        "bluesky", tokens=None, mean_friends=150, max_friends=2000, rate_limit=None
    )
    assert bluesky.per_worker == 432_000
    # Mastodon: 300 per 5 minutes, 80 a page: 40,000 users a day at 2 pages ("about").
    mastodon = source_bound(
        "mastodon", tokens=None, mean_friends=150, max_friends=2000, rate_limit=None
    )
    assert mastodon.per_worker == 43_200


def test_bluesky_bounds_each_worker_and_says_so() -> None:
    args = ["--users", "3600000", "--rate", "8000", "--source", "bluesky"]
    text = _cli(*args, "--mean-friends", "550", "--max-concurrency", "1000").stdout
    # 550 follows take 6 pages of 100: 864,000 requests a day / 6.
    assert (
        "each worker bound by 3,000 requests/5 min per IP address = 144,000 users/day "
        "at 6 requests a user, not by its concurrency"
    ) in text
    slow = _cli(*args, "--mean-friends", "550").stdout  # 8,000 a day is under the limit
    assert "bound by the workers (" in slow
    assert "not by the source's limit" in slow


def test_twitter_mobile_is_paced_by_the_configured_rate_limit() -> None:
    args = ["--users", "100000", "--rate", "80000", "--source", "twitter-mobile"]
    doc = _json(*args, "--mean-friends", "550", "--rate-limit", "1")
    # 550 follows take 28 pages of 20; one request a second is 86,400 a day.
    assert doc["source"]["pages_per_user"] == 28
    assert doc["tiers"][2]["users_per_day_per_worker"] == pytest.approx(86_400 / 28)
    env_paced = _json(*args, "--mean-friends", "550", FRIENDSCRAPE_RATE_LIMIT="1")
    assert env_paced["source"]["per_worker"] == doc["source"]["per_worker"]
    unpaced = _cli(*args).stdout
    assert "twitter-mobile has no documented request limit" in unpaced


def test_short_jobs_never_print_zero_days() -> None:
    done = _cli("--users", "10", "--rate", "8000")
    assert done.returncode == 0, done.stderr
    assert "0.00 days" not in done.stdout
    assert "$0.00" not in done.stdout
    assert " min " in done.stdout  # 10 users at 8,000 a day: 1.8 minutes


@pytest.mark.parametrize(
    ("days", "rounded"),
    [(4.2, 4.2), (4.21, 4.3), (14.2, 15.0), (450.0, 450.0), (9.91, 10.0), (0.123, 0.13)],
)
def test_suggested_days_round_up_never_down(days: float, rounded: float) -> None:
    assert round_up_days(days) == rounded
    assert round_up_days(days) >= days


def test_bad_source_is_one_line() -> None:
    done = _cli("--users", "10", "--rate", "8000", "--source", "myspace")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("friendscrape: error:")
    assert "Traceback" not in done.stderr
