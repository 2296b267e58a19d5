"""`friendscrape run` as a new process: a bar that fits a real terminal's width, and not one
escape sequence when its output goes to a pipe (as on Heroku)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import selectors
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tqdm.utils import disp_len

from friendscrape.configdoc import environ_without_configuration
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import SimulatorProcess, start_simulator_process

CLEAR = "\r\x1b[K"
USERS = 150
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the console log lines' colours
BAR = re.compile(r"starting\.\.\.|[0-9][0-9,.kM]*/[0-9]")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, Path]]:
    users = tmp_path_factory.mktemp("sim") / "users.csv"
    config = SimConfig(users=USERS, latency=0.01, mean_friends=60)
    with start_simulator_process(config, write_users=users) as process:
        yield process, users


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "friendscrape.cli", *args]


def _prepared(tmp_path: Path, users: Path) -> dict[str, str]:
    env = environ_without_configuration(os.environ)
    env["FRIENDSCRAPE_STORE"] = f"sqlite:///{tmp_path / 'fs.db'}"
    imported = ("users", "import", str(users), "--source", "twitter-mobile")
    for args in (imported, ("partitions", "plan", "--count", "1")):
        done = subprocess.run(
            _command(*args), env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert done.returncode == 0, done.stderr
    return env


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> bytes:
    """Everything written to the terminal until the process ends."""
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as waiting:
        waiting.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not waiting.select(timeout=1):
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the process closed its end of the terminal
                break
            if not chunk:
                break
            seen += chunk
    proc.wait(timeout=30)
    return seen


@pytest.mark.parametrize("columns", [50, 120])
def test_the_bar_fits_the_terminal_it_runs_on(
    tmp_path: Path, sim: tuple[SimulatorProcess, Path], columns: int
) -> None:
    process, users = sim
    env = _prepared(tmp_path, users)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    args = ("run", "--partition", "1", "--base-url", process.base_url, "--concurrency", "5")
    proc = subprocess.Popen(
        _command(*args), env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    try:
        text = _read_all(master, proc).decode("utf-8")
    finally:
        os.close(master)
    assert proc.returncode == 0, text
    text = text.replace("\r\n", "\n")  # the terminal's own line ends
    assert CLEAR in text  # a bar was drawn
    pieces = [ANSI.sub("", piece) for chunk in text.split(CLEAR) for piece in chunk.split("\n")]
    draws = [p for p in pieces if BAR.match(p)]
    assert len(draws) >= 2  # starting, ..., the final figures
    for bar in draws:
        assert disp_len(bar) <= columns, bar
        assert re.search(r"\d\d:\d\d", bar), bar  # elapsed time
    assert draws[-1].startswith(f"{USERS}/{USERS} ")
    assert "ETA done" in draws[-1]


def test_no_bar_and_no_escape_sequence_when_output_is_not_a_terminal(
    tmp_path: Path, sim: tuple[SimulatorProcess, Path]
) -> None:
    process, users = sim
    env = _prepared(tmp_path, users)
    args = ("run", "--partition", "1", "--base-url", process.base_url, "--concurrency", "5")
    done = subprocess.run(
        _command(*args), env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "run.finished" in done.stderr
    for stream in (done.stdout, done.stderr):
        assert "\x1b" not in stream
        assert "\r" not in stream
