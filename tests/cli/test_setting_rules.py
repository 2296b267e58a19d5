"""Every number setting is refused by one rule, said one way (issue 22): the message of a
refused value states what is accepted, whichever check refused it, for the environment
variable and for the command-line option that sets the same setting alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.conftest import cli
from friendscrape.config import Settings, load_settings, number_rule
from friendscrape.errors import UsageError

NUMBER_SETTINGS = [name for name in Settings.model_fields if number_rule(name) is not None]

# The options of `run` that set a number setting, and their setting.
OPTIONS = {
    "--concurrency": "concurrency",
    "--max-friends": "max_friends",
    "--users-limit": "users_limit",
    "--batch-size": "batch_size",
    "--stall-timeout": "stall_timeout",
    "--grace-period": "grace_period",
}


def _refusal(**values: str) -> str:
    with pytest.raises(UsageError) as refused:
        load_settings(**values)
    return str(refused.value)


def _outside(name: str) -> list[str]:
    """Values just past each bound, a huge one and a negative one."""
    rule = number_rule(name)
    assert rule is not None
    if rule.whole:
        return [str(int(rule.low) - 1), str(int(rule.high) + 1), "1" + "0" * 30, "-1"]
    below = rule.low / 10 if rule.zero else rule.low * 0.99
    return [repr(below), repr(rule.high * 1.01), "1e308", "-1", "0" * (not rule.zero) or "-0.5"]


def test_the_number_settings_are_all_audited() -> None:
    assert len(NUMBER_SETTINGS) >= 25, NUMBER_SETTINGS
    assert {"request_timeout", "concurrency", "grace_period", "rate_limit"} <= set(NUMBER_SETTINGS)


@pytest.mark.parametrize("name", NUMBER_SETTINGS)
def test_a_refused_value_states_the_rule_that_its_bounds_meet(name: str) -> None:
    rule = number_rule(name)
    assert rule is not None
    said = str(rule)
    for text in _outside(name):
        assert _refusal(**{name: text}).endswith(f"is out of range ({said})"), (name, text)
    # The stated bounds are accepted, and so is 0 where the rule says so (the lease's
    # two settings also bound each other: the other one is set out of the way).
    others = {"lease_heartbeat": {"lease_ttl": "1e9"}, "lease_ttl": {"lease_heartbeat": "0.001"}}
    accepted = [rule.low, rule.high] + ([0] if rule.zero else [])
    for value in accepted:
        if name == "lease_ttl" and value == rule.low:
            continue  # no heartbeat is shorter than the smallest number
        if name == "lease_heartbeat" and value == rule.high:
            continue  # no ttl is longer than the largest number
        text = str(value) if rule.whole else repr(float(value))
        assert load_settings(**{name: text}, **others.get(name, {})) is not None


def test_request_timeout_is_refused_in_one_way_from_the_environment(tmp_path: Path) -> None:
    lines = []
    for value in ("1e308", "0", "0.0001", "abc"):
        done = cli("status", cwd=tmp_path, env={"FRIENDSCRAPE_REQUEST_TIMEOUT": value})
        assert done.code == 2, done.err
        lines.append(done.err.strip())
    assert lines == [
        "friendscrape: error: invalid setting FRIENDSCRAPE_REQUEST_TIMEOUT: "
        f"{value!r} {'is not a number' if value == 'abc' else 'is out of range'} "
        "(a number from 0.001 to 1e+09)"
        for value in ("1e308", "0", "0.0001", "abc")
    ]


@pytest.mark.parametrize(("option", "name"), OPTIONS.items())
def test_an_option_and_its_environment_variable_state_the_same_rule(
    tmp_path: Path, option: str, name: str
) -> None:
    rule = number_rule(name)
    assert rule is not None
    too_big = str(int(rule.high) + 1) if rule.whole else "1e10"
    env_name = f"FRIENDSCRAPE_{name.upper()}"
    by_env = cli("run", "--partition", "1", cwd=tmp_path, env={env_name: too_big})
    by_option = cli("run", "--partition", "1", option, too_big, cwd=tmp_path)
    for done in (by_env, by_option):
        assert done.code == 2, done.err
        assert len(done.err.strip().splitlines()) == 1, done.err
    assert f"{too_big!r} is out of range ({rule})" in by_env.err
    assert f"argument {option}: {too_big!r} is out of range ({rule})" in by_option.err


@pytest.mark.parametrize(
    "values",
    [
        {"store": "sqlite://user:pw@host/job.db"},
        {"source": "myspace"},
        {"log_level": "loud"},
    ],
)
def test_a_refusal_by_our_own_check_speaks_in_our_words(values: dict[str, str]) -> None:
    said = _refusal(**values)
    assert said.startswith("invalid setting "), said
    assert "Value error" not in said, said
