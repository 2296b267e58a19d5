"""CLI fixtures: a simulator in its own process, and a helper to run the CLI as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class SimProcess:
    base_url: str
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def sim_process() -> Iterator[SimProcess]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "friendscrape.simulator",
            "--port",
            "0",
            "--users",
            "150",
            "--latency",
            "0",
            "--mean-friends",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    base_url = ""
    for line in process.stdout:
        if '"simulator.ready"' in line:
            base_url = json.loads(line)["base_url"]
            break
    assert base_url, process.stderr.read() if process.stderr else "no ready line"
    yield SimProcess(base_url, process)
    process.terminate()
    process.wait(timeout=10)


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run `friendscrape ARGS` in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FRIENDSCRAPE_")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)
