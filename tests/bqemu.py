"""Run the BigQuery-compatible local server (bqemulator) for the store tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class EmulatorError(RuntimeError):
    """The emulator did not start; the message carries the end of its log."""


@dataclass(frozen=True)
class Emulator:
    """A running emulator: its REST endpoint for the client."""

    endpoint: str
    process: subprocess.Popen[bytes]
    grpc_endpoint: str = ""
    """HOST:PORT of its gRPC server (the Storage Write API)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_spatial_extension() -> None:
    # The emulator loads DuckDB's spatial extension at start-up; copying it from its
    # wheel (as `make install` does) means nothing is downloaded. Idempotent.
    from duckdb_extensions import import_extension  # noqa: PLC0415

    import_extension("spatial")


def _ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/readyz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_emulator(log_path: Path, *, start_timeout: float = 60.0) -> Iterator[Emulator]:
    """Start bqemulator on free local ports, wait for /readyz, SIGTERM it afterwards."""
    _ensure_spatial_extension()
    rest, grpc = _free_port(), _free_port()
    binary = Path(sys.executable).with_name("bqemulator")
    command = [
        str(binary),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(rest),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc),
        "--ephemeral",
        "--log-level",
        "warning",
    ]
    # No format extensions: loading the avro one would try to download it.
    env = {**os.environ, "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"}
    env.pop("BIGQUERY_EMULATOR_HOST", None)
    endpoint = f"http://127.0.0.1:{rest}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + start_timeout
            while not _ready(endpoint):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    msg = f"bqemulator did not become ready at {endpoint}: {tail}"
                    raise EmulatorError(msg)
                # Polling a child process's readiness, not ordering test events.
                time.sleep(0.2)
            yield Emulator(endpoint=endpoint, process=process, grpc_endpoint=f"127.0.0.1:{grpc}")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
