"""Bearer tokens never leave the request: a whole x-api job run as users run it, with two
tokens, prints and exports nothing that contains them."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from friendscrape.configdoc import environ_without_configuration
from friendscrape.simulator import x_api as sim_x_api
from friendscrape.simulator.graph import SyntheticGraph

TOKENS = ("tok-secret-1", "tok-secret-2")


class XServer:
    """X API v2's following lookup on a local port, noting each Authorization header."""

    def __init__(self, graph: SyntheticGraph) -> None:
        self.api = sim_x_api.XApi(graph)
        self.authorizations: list[str | None] = []
        self.base_url = ""

    async def following(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        self.authorizations.append(authorization)
        page = self.api.following(request.match_info["id"], request.query, authorization)
        return web.Response(status=page.status, body=page.body, headers=dict(page.headers))


@pytest.fixture
async def x_server() -> AsyncIterator[XServer]:
    server = XServer(SyntheticGraph(60, seed=3, mean_friends=30))
    app = web.Application()
    app.router.add_get("/2/users/{id}/following", server.following)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


async def _cli(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``friendscrape ARGS`` in a subprocess; exit code and stdout + stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "friendscrape.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_tokens_appear_in_no_output_log_error_or_export(
    tmp_path: Path, x_server: XServer
) -> None:
    graph = x_server.api.graph
    users = tmp_path / "users.csv"
    with users.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("user_id", "screen_name", "following_count"))
        for account in graph.accounts():
            user = sim_x_api.import_user(account)
            writer.writerow((user.user_id, user.screen_name, ""))
    env = environ_without_configuration(os.environ)
    env |= {
        "FRIENDSCRAPE_X_BEARER_TOKENS": ",".join(TOKENS),
        "FRIENDSCRAPE_LOG_LEVEL": "debug",
        "FRIENDSCRAPE_LOG_FORMAT": "json",
    }
    printed: list[str] = []
    steps = [
        ("--help",),
        ("run", "--help"),
        ("demo", "--help"),
        ("users", "import", str(users)),
        ("partitions", "plan", "--count", "1"),
        ("run", "--partition", "1", "--source", "x-api", "--base-url", x_server.base_url),
        ("export", "--format", "jsonl", "--output", "friends.jsonl"),
        ("export", "--format", "csv", "--output", "edges.csv"),
        ("status", "--json"),
    ]
    for step in steps:
        code, text = await _cli(*step, cwd=tmp_path, env=env)
        assert code == 0, (step, text)
        printed.append(text)
    exported = [(tmp_path / name).read_text() for name in ("friends.jsonl", "edges.csv")]

    # The run really collected, with the tokens on the wire (both, from the pool).
    assert '"status": "ok"' in exported[0]
    assert len(exported[1].splitlines()) > 10
    sent = {a for a in x_server.authorizations if a is not None}
    assert sent == {f"Bearer {t}" for t in TOKENS}, "the credential pool should send both tokens"
    assert any('"event"' in text for text in printed), "the run should have logged events"

    everything = "\n".join(printed + exported)
    store = b"".join(p.read_bytes() for p in tmp_path.glob("friendscrape.db*"))
    for token in TOKENS:
        assert token not in everything
        assert token.encode() not in store


async def test_a_rejected_token_ends_the_run_with_one_line_and_no_failed_rows(
    tmp_path: Path, x_server: XServer
) -> None:
    users = tmp_path / "users.csv"
    with users.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("user_id", "screen_name"))
        for account in x_server.api.graph.accounts():
            user = sim_x_api.import_user(account)
            writer.writerow((user.user_id, user.screen_name))
    env = environ_without_configuration(os.environ)
    env |= {"FRIENDSCRAPE_X_BEARER_TOKENS": "revoked-abc123", "FRIENDSCRAPE_LOG_FORMAT": "json"}
    for step in (("users", "import", str(users)), ("partitions", "plan", "--count", "1")):
        assert (await _cli(*step, cwd=tmp_path, env=env))[0] == 0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "friendscrape.cli",
        "run",
        "--partition",
        "1",
        "--source",
        "x-api",
        "--base-url",
        x_server.base_url,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == 2
    stderr = err.decode().strip()
    # stderr holds the JSON log lines and one error line, the last.
    not_logs = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert not_logs == stderr.splitlines()[-1:], stderr
    assert not_logs[0].startswith("friendscrape: error: "), stderr
    assert "Traceback" not in stderr
    assert "revoked-abc123" not in stderr + out.decode()
    assert '"run.aborted"' in stderr
    assert out.decode() == ""
    code, exported = await _cli("export", "--format", "jsonl", cwd=tmp_path, env=env)
    assert code == 0
    assert '"failed"' not in exported  # no user was saved as failed for a bad token


ECHO_TOKENS = ("Tok1Secret", "Tok2Secret")  # valid usernames, so a page can list them


async def _echoing_following(request: web.Request) -> web.Response:
    """A hostile X API: it puts the caller's bearer token in what it answers."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    user_id = request.match_info["id"]
    if user_id == "1":  # the token as a followed account's username
        doc: dict[str, object] = {
            "data": [{"id": "101", "username": token}, {"id": "102", "username": "grace"}],
            "meta": {"result_count": 2},
        }
    elif user_id == "2":  # the token in an error's detail, kept as the user's error
        doc = {"errors": [{"type": "about:blank", "detail": f"token {token} is odd"}]}
    else:  # the token inside an invalid username, quoted in the parse error
        doc = {"data": [{"id": "103", "username": f"x-{token}"}], "meta": {"result_count": 1}}
    return web.json_response(doc)


async def test_a_token_echoed_by_the_upstream_is_never_saved_or_exported(tmp_path: Path) -> None:
    app = web.Application()
    app.router.add_get("/2/users/{id}/following", _echoing_following)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,ada\n2,bob\n3,carol\n", encoding="utf-8")
    env = environ_without_configuration(os.environ)
    env |= {"FRIENDSCRAPE_X_BEARER_TOKENS": ",".join(ECHO_TOKENS)}
    try:
        steps = [
            ("users", "import", str(users)),
            ("partitions", "plan", "--count", "1"),
            ("run", "--partition", "1", "--source", "x-api", "--base-url", base_url),
            ("export", "--format", "jsonl", "--output", "friends.jsonl"),
            ("export", "--format", "csv", "--output", "edges.csv"),
        ]
        printed = []
        for step in steps:
            code, text = await _cli(*step, cwd=tmp_path, env=env)
            assert code == 0, (step, text)
            printed.append(text)
    finally:
        await runner.cleanup()
    exported = (tmp_path / "friends.jsonl").read_text() + (tmp_path / "edges.csv").read_text()
    store = b"".join(p.read_bytes() for p in tmp_path.glob("friendscrape.db*"))

    # The upstream did echo: each user's row carries a placeholder where the token was.
    rows = {row["user_id"]: row for row in map(json.loads, exported.splitlines()[:3])}
    assert set(rows) == {"1", "2", "3"}
    assert rows["1"]["friend_names"][0].startswith("[redacted token#")
    assert "[redacted token#" in rows["2"]["error"]
    assert "[redacted token#" in rows["3"]["error"]
    for token in ECHO_TOKENS:
        assert token not in exported
        assert token not in "\n".join(printed)
        assert token.encode() not in store
