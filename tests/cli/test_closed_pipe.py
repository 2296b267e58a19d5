"""A reader that goes away (`friendscrape export | head -1`) ends a command quietly.

Each command runs as its own process, as in a shell pipeline. Results commands end with
exit 141 (what a shell reports for a writer whose pipe closed) and no traceback; a run
whose logs lose their reader stops as on SIGTERM and releases its partition.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cli.conftest import cli
from friendscrape.configdoc import environ_without_configuration
from friendscrape.simulator import SyntheticGraph, write_users_csv
from friendscrape.simulator.process import SimulatorProcess

CLOSED_PIPE = 141
USERS = 150  # the sim_process fixture's graph


def _env() -> dict[str, str]:
    return environ_without_configuration(os.environ) | {"FRIENDSCRAPE_LOG_FORMAT": "json"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "friendscrape.cli", *args]


def _results(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0]
    return count


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory, sim_process: SimulatorProcess) -> Path:
    """A folder whose friendscrape.db holds every user of the simulator, collected."""
    folder = tmp_path_factory.mktemp("collected")
    users = folder / "users.csv"
    write_users_csv(SyntheticGraph(USERS, seed=7, mean_friends=60), users)
    assert cli("users", "import", str(users), "--source", "twitter-mobile", cwd=folder).code == 0
    assert cli("partitions", "plan", "--count", "1", cwd=folder).code == 0
    ran = cli("run", "--partition", "1", "--base-url", sim_process.base_url, cwd=folder)
    assert ran.code == 0, ran.err
    assert _results(folder / "friendscrape.db") == USERS
    return folder


def _read_one_line_then_close(args: list[str], cwd: Path) -> tuple[bytes, int, str]:
    """Start ``args``, read one line of stdout, close the pipe: (line, exit code, stderr)."""
    with subprocess.Popen(
        args, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=120)
    return line, code, err


@pytest.mark.parametrize(
    "fmt",
    [
        ["--format", "jsonl"],
        ["--format", "csv"],
        ["--format", "edges"],
        ["--format", "graphml"],
    ],
)
def test_export_into_a_closed_pipe_ends_quietly_and_keeps_the_store(
    collected: Path, fmt: list[str]
) -> None:
    # The export is far larger than a pipe's buffer, so it is still writing when the
    # reader closes: the next write meets the closed pipe.
    line, code, err = _read_one_line_then_close(_command("export", *fmt), collected)
    assert line.strip()
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert code == CLOSED_PIPE, err
    assert _results(collected / "friendscrape.db") == USERS
    complete = cli("export", *fmt, cwd=collected)
    assert complete.code == 0, complete.err
    assert complete.out.splitlines()[0] == line.decode().rstrip("\n")


@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--json"], ["partitions", "show"], ["export"], ["--help"]],
)
def test_a_reader_gone_before_the_first_line_ends_quietly(collected: Path, args: list[str]) -> None:
    # `friendscrape status | true`: the reader has exited before the command writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            _command(*args),
            cwd=collected,
            env=_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    # argparse prints --help itself and ignores a failed write: exit 0 there.
    assert done.returncode == (0 if args == ["--help"] else CLOSED_PIPE), done.stderr


def test_a_run_piped_to_head_stops_cleanly_and_frees_its_partition(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    # `friendscrape run 2>&1 | head -1`, the reader gone before the first log line:
    # the run stops as on SIGTERM, releases its lease, and says so with exit 141.
    users = tmp_path / "users.csv"
    write_users_csv(SyntheticGraph(USERS, seed=7, mean_friends=60), users)
    assert cli("users", "import", str(users), "--source", "twitter-mobile", cwd=tmp_path).code == 0
    assert cli("partitions", "plan", "--count", "1", cwd=tmp_path).code == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            _command("run", "--partition", "1", "--base-url", sim_process.base_url),
            cwd=tmp_path,
            env=_env(),
            stdout=write_end,
            stderr=write_end,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == CLOSED_PIPE
    # Its lease is released (a held partition would exit 6) and nothing is lost: the
    # next run collects every user.
    again = cli("run", "--partition", "1", "--base-url", sim_process.base_url, cwd=tmp_path)
    assert again.code == 0, again.err
    assert "Traceback" not in again.err
    assert _results(tmp_path / "friendscrape.db") == USERS


def test_a_run_whose_stdout_reader_left_collects_to_the_end(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    # `friendscrape run | head -1`: logs are on stderr, so the run writes nothing to the
    # closed stdout and collects its partition as usual.
    users = tmp_path / "users.csv"
    write_users_csv(SyntheticGraph(USERS, seed=7, mean_friends=60), users)
    assert cli("users", "import", str(users), "--source", "twitter-mobile", cwd=tmp_path).code == 0
    assert cli("partitions", "plan", "--count", "1", cwd=tmp_path).code == 0
    line, code, err = _read_one_line_then_close(
        _command("run", "--partition", "1", "--base-url", sim_process.base_url), tmp_path
    )
    assert line == b""
    assert code == 0, err
    assert "Traceback" not in err
    assert '"run.finished"' in err
    assert _results(tmp_path / "friendscrape.db") == USERS
