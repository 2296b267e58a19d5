"""The simulator in a process of its own, for benchmarks and tests that measure, fault or
kill the collector apart from it."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from friendscrape.simulator.app import CONTROL_PREFIX, SimConfig
from friendscrape.simulator.cli import config_args


async def control_json(base_url: str, route: str) -> dict[str, Any]:
    """What a running simulator's control route (``stats``, ``ratelimit``) says, as JSON."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{base_url}{CONTROL_PREFIX}/{route}", timeout=aiohttp.ClientTimeout(total=10)
        ) as response,
    ):
        response.raise_for_status()
        data: dict[str, Any] = await response.json()
        return data


class SimulatorStartError(RuntimeError):
    """The simulator process exited or stayed silent before saying it was ready."""


@dataclass
class SimulatorProcess:
    """A running ``python -m friendscrape.simulator`` and the config it serves."""

    process: subprocess.Popen[bytes]
    base_url: str
    config: SimConfig

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within a few seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator_process(
    config: SimConfig,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    write_users: Path | None = None,
) -> SimulatorProcess:
    """Start the simulator on a free local port; return once its ``simulator.ready`` line
    (which names the port; logs are on stderr) has been read. ``write_users``: it first
    writes the accounts to collect to this CSV (in the legacy site's form)."""
    extra = [] if write_users is None else [f"--write-users={write_users}"]
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [sys.executable, "-m", "friendscrape.simulator", "--port=0", *config_args(config), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=None if env is None else dict(env),
    )
    assert process.stderr is not None  # noqa: S101 - asked for with PIPE
    deadline = time.monotonic() + timeout
    seen = b""
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stderr, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not waiting.select(timeout=left):
                continue
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break  # it exited
            seen += chunk
            for line in seen.splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") == "simulator.ready":
                    return SimulatorProcess(process, str(event["base_url"]), config)
    process.kill()
    process.wait()
    msg = f"the simulator was not ready within {timeout:g}s: {seen[-300:]!r}"
    raise SimulatorStartError(msg)
