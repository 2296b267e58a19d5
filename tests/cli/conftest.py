"""CLI fixtures: a simulator in its own process, and a helper to run the CLI as users do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.configdoc import environ_without_configuration
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import SimulatorProcess, start_simulator_process


@pytest.fixture(scope="module")
def sim_process() -> Iterator[SimulatorProcess]:
    config = SimConfig(users=150, latency=0.0, mean_friends=60)
    with start_simulator_process(config) as sim:
        yield sim


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run `friendscrape ARGS` in a subprocess, as a user would."""
    full_env = environ_without_configuration(os.environ)
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
