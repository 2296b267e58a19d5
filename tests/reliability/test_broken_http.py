"""A server that answers with broken HTTP fails its users with a clear error, never a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reliability.harness import partition_users, results, run_cli, store_url

pytestmark = pytest.mark.slow

GARBAGE = b"HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\n<html></html>"


@pytest.fixture
async def broken_server() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(GARBAGE)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_broken_http_fails_each_user_with_its_error(db: Path, broken_server: str) -> None:
    args = ["run", "--store", store_url(db), "--partition", "1", "--source", "twitter-mobile"]
    args += ["--base-url", broken_server]
    code, run = await run_cli([*args, "--users-limit", "5"])
    assert code == 0, run.tail()
    assert "Traceback" not in run.stderr
    rows = results(db)
    assert len(rows) == 5, run.tail()
    wanted = [uid for uid, _ in partition_users(db, 1)][:5]
    for uid in wanted:
        assert rows[uid]["status"] in {"failed", "invalid"}, rows[uid]
        if rows[uid]["status"] == "failed":
            assert "malformed" in rows[uid]["error"], rows[uid]["error"]
