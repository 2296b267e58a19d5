"""`simulate --write-users FILE --no-serve`: the users file is written and the process
exits, so a script can import it before the simulator it starts next serves the graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "friendscrape.cli", "simulate", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_no_serve_writes_the_users_and_exits_zero(tmp_path: Path) -> None:
    users_csv = tmp_path / "users.csv"
    done = _simulate(
        "--users", "40", "--users-format", "bluesky", "--write-users", str(users_csv), "--no-serve"
    )
    assert done.returncode == 0, done.stderr
    lines = users_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "user_id,screen_name,following_count"
    assert len(lines) == 41
    assert "simulator.ready" not in done.stderr


def test_no_serve_without_a_users_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _simulate("--no-serve")
    assert done.returncode == 2
    assert "--no-serve writes the users file and exits: give --write-users CSV" in done.stderr
    assert "Traceback" not in done.stderr
