"""What the command line loads before it does any work.

Every command line mounts every command's options, so the options stay light and each
command's code is loaded only by the command that runs it: `friendscrape --help` and a
command's `--help` load no HTTP client, parser, store driver, BigQuery or Arrow, and
`status` loads no HTTP client. Measured, these were most of start-up's cost (aiohttp
alone about a fifth of `friendscrape --help`'s CPU time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.conftest import cli

# Runs in a fresh interpreter: the command line as the console script calls it, then
# which modules it loaded.
_PROBE = """
import json, sys
from friendscrape import cli
try:
    cli.main(json.loads(sys.argv[1]))
except SystemExit:
    pass
with open(sys.argv[2], "w") as out:
    json.dump(sorted(sys.modules), out)
"""

# Libraries and parts of friendscrape that no command's help needs.
NOT_FOR_HELP = (
    "aiohttp",
    "yarl",
    "multidict",
    "selectolax",
    "msgspec",
    "sqlite3",
    "structlog",
    "tqdm",
    "google",
    "grpc",
    "pyarrow",
    "friendscrape.core",
    "friendscrape.fetch",
    "friendscrape.parse",
    "friendscrape.sources",
    "friendscrape.stores",
    "friendscrape.simulator",
)
# What `status` on a SQLite store does without: it reads counts, and fetches nothing.
NOT_FOR_STATUS = (
    "aiohttp",
    "selectolax",
    "google",
    "grpc",
    "pyarrow",
    "friendscrape.fetch",
    "friendscrape.simulator",
)


def loaded(args: list[str], tmp_path: Path) -> list[str]:
    """The modules `friendscrape ARGS` had loaded when it ended."""
    listing = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), str(listing)],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        timeout=60,
    )
    names: list[str] = json.loads(listing.read_text())
    return names


def among(names: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted({p for p in prefixes for n in names if n == p or n.startswith(f"{p}.")})


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["status", "--help"],
        ["export", "--help"],
        ["users", "import", "--help"],
        ["demo", "--help"],
        ["bench", "--help"],
        ["estimate", "--help"],
        ["report", "--help"],
        ["partitions", "plan", "--help"],
        ["waves", "list", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_no_command_code(args: list[str], tmp_path: Path) -> None:
    names = loaded(args, tmp_path)
    assert "friendscrape.cli" in names  # the probe ran the command line
    assert among(names, NOT_FOR_HELP) == []


def test_status_loads_no_http_client(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,a\n2,b\n")
    store = f"sqlite:///{tmp_path / 'job.db'}"
    done = cli("users", "import", str(users), "--store", store, "--source", "bluesky", cwd=tmp_path)
    assert done.code == 0, done.err
    names = loaded(["status", "--store", store], tmp_path)
    assert "friendscrape.commands.status.command" in names  # status ran
    assert among(names, NOT_FOR_STATUS) == []
