"""Help a newcomer can work from, and the global options before or after the command.

Every option of every command has help; an option backed by a setting names its
environment variables and the setting's default (read from Settings, so the help cannot
drift from it); the top-level help lists a job's commands in order with an example each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cli.conftest import cli
from friendscrape import __version__
from friendscrape import cli as cli_module
from friendscrape.clihelp import env_names, setting_of, walk
from friendscrape.commands import demo_options as demo
from friendscrape.config import Settings
from friendscrape.simulator import SyntheticGraph, write_users_csv
from friendscrape.simulator.process import SimulatorProcess


def _flat(text: str) -> str:
    return " ".join(text.split())


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    return [(p.prog, p) for p in walk(cli_module._build_parser())]


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{prog} {action.option_strings or action.dest}"
        for prog, parser in _parsers()
        for action in parser._actions
        if action.dest != "help"
        and not isinstance(action, argparse._SubParsersAction)
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_options_backed_by_a_setting_name_their_environment_and_default() -> None:
    checked = 0
    for prog, parser in _parsers():
        page = _flat(parser.format_help())
        for action in parser._actions:
            name = setting_of(action)
            if name is None:
                continue
            default = Settings.model_fields[name].default
            names = " or ".join(env_names(name))
            assert f"env {names}; default " in page, (prog, action.option_strings)
            if isinstance(default, int | float | str) and not isinstance(default, bool):
                shown = f"{default:g}" if isinstance(default, float) else str(default)
                assert f"{names}; default {shown})" in page, (prog, action.option_strings)
            checked += 1
    # --store, --log-format and --log-level on every command, and run's settings.
    assert checked > 40


def test_options_named_like_a_setting_but_with_their_own_default_say_it(tmp_path: Path) -> None:
    # demo keeps its own defaults (not the settings'): its help says them, and only them.
    shown = cli("demo", "--help", cwd=tmp_path)
    assert shown.code == 0, shown.err
    page = _flat(shown.out)
    assert f"users in flight per partition (default: {demo.DEFAULT_CONCURRENCY})" in page
    assert f"synthetic users (default: {demo.DEFAULT_USERS})" in page
    assert f"seconds per page (default: {demo.DEFAULT_LATENCY:g})" in page
    assert "FRIENDSCRAPE_CONCURRENCY" not in page
    # The demo leads with a platform live today; the legacy site is labelled as such.
    assert "shut down in 2020; for archived pages) (default: bluesky)" in page
    assert "FRIENDSCRAPE_SOURCE" not in page


def test_run_help_shows_choices_defaults_and_environment_names(tmp_path: Path) -> None:
    shown = cli("run", "--help", cwd=tmp_path)
    assert shown.code == 0, shown.err
    page = _flat(shown.out)
    assert "--source {twitter-mobile,x-api,bluesky,mastodon}" in page
    assert "(env FRIENDSCRAPE_CONCURRENCY or MAX_THREADS; default 50)" in page
    assert "(env FRIENDSCRAPE_BATCH_SIZE or BATCH_SIZE; default 100)" in page
    assert "(env FRIENDSCRAPE_STALL_TIMEOUT; default 180)" in page
    assert "(env FRIENDSCRAPE_GRACE_PERIOD; default 15)" in page
    assert "(env FRIENDSCRAPE_STORE; default sqlite:///friendscrape.db)" in page


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["users", "import", "--help"], "file CSV with a header"),
        (["demo", "--help"], "--partitions PARTITIONS partitions, one run each (default: 10)"),
        (["bench", "--help"], "on average (default: 550)"),
        (
            ["estimate", "--help"],
            "--deadline-days DEADLINE_DAYS days the job may take (default: 10)",
        ),
    ],
)
def test_options_that_had_no_help_have_it(tmp_path: Path, args: list[str], said: str) -> None:
    shown = cli(*args, cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert said in _flat(shown.out)


def test_top_level_help_lists_the_job_in_order_with_an_example_each(tmp_path: Path) -> None:
    shown = cli("--help", cwd=tmp_path)
    assert shown.code == 0, shown.err
    examples = [
        line.split()[1:3] for line in shown.out.splitlines() if line.startswith("  friendscrape ")
    ]
    commands = [words[0] for words in examples]
    job = ["users", "partitions", "run", "status", "export", "report", "estimate"]
    assert commands[: len(job)] == job
    assert examples[0] == ["users", "import"]
    assert examples[1] == ["partitions", "plan"]
    assert "--store sqlite:///job.db status" in shown.out  # a global option first


def test_version(tmp_path: Path) -> None:
    shown = cli("--version", cwd=tmp_path)
    assert shown.code == 0
    assert shown.out.strip() == f"friendscrape {__version__}"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A store at job.db with the simulator's users imported and one partition planned,
    made with --store before the command."""
    users = tmp_path / "users.csv"
    write_users_csv(SyntheticGraph(150, seed=7, mean_friends=60), users)
    url = f"sqlite:///{tmp_path / 'job.db'}"
    imported = cli("--store", url, "users", "import", str(users), cwd=tmp_path)
    assert imported.code == 0, imported.err
    assert cli("--store", url, "partitions", "plan", "--count", "1", cwd=tmp_path).code == 0
    assert not (tmp_path / "friendscrape.db").exists()  # the default store was not used
    return tmp_path


def test_store_before_the_command(job: Path) -> None:
    url = f"sqlite:///{job / 'job.db'}"
    status = cli("--store", url, "status", "--json", cwd=job)
    assert status.code == 0, status.err
    assert json.loads(status.out)["total"]["users"] == 150


def test_the_option_after_the_command_wins(job: Path) -> None:
    good = f"sqlite:///{job / 'job.db'}"
    missing = f"sqlite:///{job / 'missing.db'}"
    assert cli("--store", missing, "status", "--store", good, cwd=job).code == 0
    refused = cli("--store", good, "status", "--store", missing, cwd=job)
    assert refused.code == 2
    assert "missing.db" in refused.err


def test_store_between_a_commands_two_words(job: Path) -> None:
    """`users --store URL import` and `partitions --store URL show`: the words before
    the action take the global options too, and a later one still wins."""
    other = f"sqlite:///{job / 'other.db'}"
    imported = cli("users", "--store", other, "import", str(job / "users.csv"), cwd=job)
    assert imported.code == 0, imported.err
    good = f"sqlite:///{job / 'job.db'}"
    planned = cli("--store", good, "partitions", "--store", other, "plan", "--count", "3", cwd=job)
    assert planned.code == 0, planned.err
    shown = cli("partitions", "--store", good, "show", "--store", other, cwd=job)
    assert shown.code == 0, shown.err
    assert "       3 " in shown.out  # other.db's plan of 3, not job.db's plan of 1
    shown = cli("partitions", "--store", good, "show", cwd=job)
    assert "       3 " not in shown.out


def test_log_options_before_run(job: Path, sim_process: SimulatorProcess) -> None:
    url = f"sqlite:///{job / 'job.db'}"
    ran = cli(
        "--store",
        url,
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "run",
        "--partition",
        "1",
        "--source",
        "twitter-mobile",
        "--users-limit",
        "10",
        "--base-url",
        sim_process.base_url,
        cwd=job,
    )
    assert ran.code == 0, ran.err
    events = [json.loads(line) for line in ran.err.splitlines()]
    assert {e["level"] for e in events} >= {"debug", "info"}
    assert any(e["event"] == "run.finished" and e["users"] == 10 for e in events)


def test_global_options_before_simulate_are_refused_in_one_line(tmp_path: Path) -> None:
    refused = cli("--store", "sqlite:///x.db", "simulate", cwd=tmp_path)
    assert refused.code == 2
    assert refused.err.count("\n") == 1
    assert refused.err.startswith("friendscrape: error: simulate takes none of --store")
