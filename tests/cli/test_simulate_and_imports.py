"""The CLI loads the simulator only for the commands that use it; `simulate` keeps the
simulator's own options, help and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli.conftest import cli

# Runs in a fresh interpreter: what `friendscrape run` loads before it does any work.
_PROBE = """
import json, sys
from friendscrape import cli
cli._build_parser().parse_args(["run", "--partition", "1"])
import friendscrape.commands.run.command
loaded = sorted(
    name for name in sys.modules
    if name.startswith("friendscrape.simulator") or name.startswith("aiohttp.web")
)
print(json.dumps(loaded))
"""


def test_the_cli_and_the_run_command_load_no_simulator_and_no_web_server() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == []


def test_simulate_help_shows_the_simulator_options(tmp_path: Path) -> None:
    result = cli("simulate", "--help", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("usage: friendscrape simulate ")
    for option in ("--port", "--users", "--latency", "--rate-limit", "--write-users"):
        assert option in result.out


def test_simulate_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    for args in (("--port", "x"), ("--no-such-option",), ("stray",)):
        result = cli("simulate", *args, cwd=tmp_path)
        assert result.code == 2, (args, result.err)
        assert result.err.startswith("friendscrape: error: "), result.err
        assert len(result.err.strip().splitlines()) == 1, result.err
        assert "friendscrape simulate --help" in result.err


def test_other_commands_still_refuse_unknown_arguments(tmp_path: Path) -> None:
    result = cli("status", "--no-such-option", cwd=tmp_path)
    assert result.code == 2
    assert result.err.strip() == (
        "friendscrape: error: unrecognized arguments: --no-such-option "
        "(see friendscrape status --help)"
    )


def test_simulate_handles_need_a_source_that_takes_them(tmp_path: Path) -> None:
    out = tmp_path / "users.csv"
    result = cli(
        "simulate",
        "--users-format",
        "bluesky",
        "--handles",
        "--write-users",
        str(out),
        cwd=tmp_path,
    )
    assert result.code != 0
    assert "--handles needs --users-format x-api or mastodon" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert not out.exists()
