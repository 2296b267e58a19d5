"""The process entry: prints simulator.ready, serves, exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.slow


async def start(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "friendscrape.simulator",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(30):
        while True:
            line = await process.stderr.readline()  # its logs, on stderr
            if not line:
                process.kill()
                await process.wait()
                raise AssertionError("the simulator exited before it was ready")
            event = json.loads(line)
            if event.get("event") == "simulator.ready":
                return process, event


async def test_process_serves_until_sigterm_and_exits_zero(tmp_path: Path) -> None:
    users_csv = tmp_path / "users.csv"
    process, ready = await start(
        "--users", "60", "--latency", "0", "--hostile", "--write-users", str(users_csv)
    )
    try:
        base_url = str(ready["base_url"])
        assert base_url.startswith("http://127.0.0.1:")
        assert ready["users"] == 60
        lines = users_csv.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "user_id,screen_name,following_count"
        name = lines[1].split(",")[1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/_sim/truth/{name}") as response:
                truth = await response.json()
            async with http.get(f"{base_url}/{name}/following") as response:
                assert response.status == (404 if truth["status"] == "not_found" else 200)
            async with http.get(f"{base_url}/_sim/stats") as response:
                assert (await response.json())["total"] == 1
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
        assert process.returncode == 0
        events = [json.loads(line)["event"] for line in stderr.splitlines()]
        assert events[-1] == "simulator.stopped"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_process_refuses_bad_options() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "friendscrape.simulator",
        "--error-rate",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    assert stdout == b""
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    assert logged[-1]["event"] == "simulator.bad_options"
