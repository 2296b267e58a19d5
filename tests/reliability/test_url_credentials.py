"""A user name and password written into a URL never leak (processes, real servers).

``--base-url http://user:password@host`` (an upstream behind an HTTP-auth proxy): the
credentials are taken out of the URL and sent as Basic auth to that host alone; the
password appears in no log line (JSON, debug level), no stored byte, no export, no
status, report or estimate output. x-api, whose Authorization header holds its bearer
token, refuses such a URL in one line. Store URLs and the BigQuery emulator endpoints
take no credentials: refused in one line that does not repeat them.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from friendscrape.simulator import SyntheticGraph
from friendscrape.simulator.formats import write_users_csv
from reliability.harness import (
    CliRun,
    SimProcess,
    clean_env,
    graph_config,
    run_cli,
    start_simulator,
    store_url,
)

pytestmark = pytest.mark.slow

USER = "proxy user"
PASSWORD = "S3cret/Pw"
MARK = "S3cret"
"""In every form of the password: decoded, as written (``S3cret%2FPw``), and the pair."""
USERINFO = "proxy%20user:S3cret%2FPw"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
LEAKS = (MARK, BASIC)


def _leaks(text: str) -> list[str]:
    return [secret for secret in LEAKS if secret in text]


def _all_output(run: CliRun) -> str:
    """Everything a process wrote: its JSON log events, other stderr lines, stdout."""
    events = "\n".join(json.dumps(e) for e in run.events)
    return "\n".join([events, run.stderr, *run.stdout_other])


# -- an HTTP-auth proxy in front of the simulator ----------------------------------------


@dataclass
class AuthProxy:
    """A reverse proxy that answers 401 to any request without the expected Basic auth."""

    port: int
    authorizations: Counter[str | None] = field(default_factory=Counter)

    def base_url(self, userinfo: str = USERINFO) -> str:
        return f"http://{userinfo}@127.0.0.1:{self.port}"


_DROPPED = {"content-length", "content-encoding", "transfer-encoding", "connection"}


@asynccontextmanager
async def auth_proxy(upstream: str) -> AsyncIterator[AuthProxy]:
    """Serve an AuthProxy of ``upstream`` on a free port for the block."""
    proxy = AuthProxy(0)
    expected = f"Basic {BASIC}"
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def forward(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization")
        proxy.authorizations[given] += 1
        if given != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="p"'})
        try:
            async with session.get(f"{upstream}{request.rel_url}") as response:
                body = await response.read()
                headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED}
                return web.Response(status=response.status, body=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError):
            return web.Response(status=502)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy.port = runner.addresses[0][1]
    try:
        yield proxy
    finally:
        await runner.cleanup()
        await session.close()


@pytest.fixture(scope="module")
def flaky_sim() -> Iterator[SimProcess]:
    """Some 500s and dropped connections, so users fail with their URL in the error."""
    sim = start_simulator(graph_config(latency=0.002, error_rate=0.08, drop_rate=0.02))
    try:
        yield sim
    finally:
        sim.stop()


# -- the job: import, plan, run, then every command that shows what was stored -----------


async def _ok(args: list[str], env: dict[str, str]) -> CliRun:
    code, run = await run_cli(args, env=env, timeout=120)
    assert code == 0, (args, run.tail())
    assert not _leaks(_all_output(run)), (args, _leaks(_all_output(run)))
    return run


async def _collect_and_show(
    store: str, env: dict[str, str], source: str, base_url: str, users_csv: Path
) -> list[CliRun]:
    """Import, plan, run partition 1 (URL on the command line), then status, report,
    estimate and both exports with the URL in FRIENDSCRAPE_BASE_URL; every process's
    output is checked for the secret. The runs, in that order."""
    on = ["--store", store]
    runs = [
        await _ok(["users", "import", str(users_csv), *on], env),
        await _ok(["partitions", "plan", "--count", "3", *on], env),
        await _ok(
            ["run", *on, "--partition", "1", "--source", source, "--base-url", base_url], env
        ),
    ]
    shown = {**env, "FRIENDSCRAPE_BASE_URL": base_url}
    for args in (
        ["status", *on],
        ["status", *on, "--json"],
        ["report", *on],
        ["estimate", *on, "--from-status", "--allow-simulated"],
        ["export", *on, "--format", "jsonl"],
        ["export", *on, "--format", "csv"],
    ):
        runs.append(await _ok(args, shown))
    return runs


def _run_env() -> dict[str, str]:
    # One attempt a page: a 500 or a dropped connection fails its user, so error cells
    # holding the request's URL are stored; debug logs show every request's URL.
    return clean_env(FRIENDSCRAPE_FETCH_ATTEMPTS="1", FRIENDSCRAPE_BREAKER_USERS="0")


def _check_job(runs: list[CliRun], proxy: AuthProxy) -> None:
    run, export = runs[2], runs[-2]
    rows = [json.loads(line) for line in export.stdout_other if line]
    statuses = Counter(row["status"] for row in rows)
    assert statuses["ok"] > 0, statuses  # the proxy let the run through: auth was sent
    errors = [row["error"] for row in rows if row.get("error")]
    # The URL is in error cells and log lines (with its host), never its credentials.
    assert any(f"127.0.0.1:{proxy.port}/" in error for error in errors), errors[:3]
    assert any(f"127.0.0.1:{proxy.port}/" in json.dumps(e) for e in run.events)
    assert set(proxy.authorizations) == {f"Basic {BASIC}"}, proxy.authorizations
    report = "\n".join(runs[5].stdout_other)
    assert f"127.0.0.1:{proxy.port}" in report  # the upstream it names: host and port only


def _store_bytes(db: Path) -> bytes:
    """The SQLite file and its WAL, byte for byte."""
    return b"".join(p.read_bytes() for p in db.parent.glob(f"{db.name}*") if p.is_file())


@pytest.mark.parametrize("source", ["twitter-mobile", "bluesky", "mastodon"])
async def test_base_url_password_is_sent_and_never_shown_sqlite(
    source: str, tmp_path: Path, flaky_sim: SimProcess, graph: SyntheticGraph
) -> None:
    users_csv = tmp_path / "users.csv"
    write_users_csv(graph, users_csv, source)
    db = tmp_path / "job.db"
    async with auth_proxy(flaky_sim.base_url) as proxy:
        runs = await _collect_and_show(
            store_url(db), _run_env(), source, proxy.base_url(), users_csv
        )
    _check_job(runs, proxy)
    stored = _store_bytes(db)
    assert stored
    for secret in (*LEAKS, "S3cret%2FPw", "proxy%20user"):
        assert secret.encode() not in stored, secret


@pytest.mark.bigquery
async def test_base_url_password_is_never_stored_in_bigquery(
    tmp_path: Path,
    flaky_sim: SimProcess,
    graph: SyntheticGraph,
    bq_emulator: Any,
    bq_dataset: str,
) -> None:
    users_csv = tmp_path / "users.csv"
    write_users_csv(graph, users_csv, "twitter-mobile")
    env = _run_env()
    env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = bq_emulator.endpoint
    env["FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT"] = bq_emulator.grpc_endpoint
    store = f"bigquery://test-project/{bq_dataset}"
    async with auth_proxy(flaky_sim.base_url) as proxy:
        runs = await _collect_and_show(store, env, "twitter-mobile", proxy.base_url(), users_csv)
    _check_job(runs, proxy)
    dumped = _dataset_text(bq_emulator.endpoint, bq_dataset)
    assert "127.0.0.1" in dumped  # the tables were read: error cells hold the host
    assert not _leaks(dumped)


def _dataset_text(endpoint: str, dataset: str) -> str:
    """Every row of every table of the dataset, as text."""
    from google.api_core.client_options import ClientOptions  # noqa: PLC0415
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import bigquery  # noqa: PLC0415

    client = bigquery.Client(
        project="test-project",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    try:
        texts = []
        for table in client.list_tables(f"test-project.{dataset}", timeout=20):
            query = f"SELECT * FROM `test-project.{dataset}.{table.table_id}`"
            texts.extend(repr(dict(row)) for row in client.query(query).result(timeout=60))
        return "\n".join(texts)
    finally:
        client.close()


# -- refusals: one line, exit 2, the secret not repeated ---------------------------------


async def _refused(args: list[str], env: dict[str, str]) -> str:
    code, run = await run_cli(args, env=env, timeout=60)
    lines = run.stderr.strip().splitlines()
    assert code == 2, (args, run.tail())
    assert len(lines) == 1, (args, run.stderr)
    assert lines[0].startswith("friendscrape: error: "), lines[0]
    assert not _leaks(_all_output(run)), _all_output(run)
    assert not run.events, run.events  # nothing started
    return lines[0]


@pytest.mark.parametrize("tokens", ["tok-a,tok-b", None])
async def test_x_api_refuses_a_base_url_with_credentials(
    tokens: str | None, tmp_path: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    """Its one Authorization header holds the bearer token: every request would fail."""
    users_csv = tmp_path / "users.csv"
    write_users_csv(graph, users_csv, "x-api")
    store = ["--store", store_url(tmp_path / "job.db")]
    env = clean_env(**({"FRIENDSCRAPE_X_BEARER_TOKENS": tokens} if tokens else {}))
    await _ok(["users", "import", str(users_csv), *store], env)
    await _ok(["partitions", "plan", "--count", "3", *store], env)
    base = clean_sim.base_url.replace("http://", f"http://{USERINFO}@")
    run = ["run", *store, "--partition", "1", "--source", "x-api"]
    line = await _refused([*run, "--base-url", base], env)
    assert "x-api" in line
    assert "Authorization" in line
    line = await _refused(run, {**env, "FRIENDSCRAPE_BASE_URL": base})
    assert "x-api" in line
    # Without them it collects (the simulator takes requests with or without a token).
    code, done = await run_cli([*run, "--base-url", clean_sim.base_url], env=env, timeout=120)
    assert code == 0, done.tail()


async def test_urls_with_credentials_where_none_are_taken_are_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    at = f"{USERINFO}@"
    flag_cases = [
        (["status", "--store", f"bigquery://{at}test-project/ds"], "user name or password"),
        (["status", "--store", f"sqlite://{at}/{tmp_path / 'x.db'}"], "user name or password"),
        # A bad base URL's message shows it, its credentials as ***.
        (["run", "--store", db, "--partition", "1", "--base-url", f"http://{at}h:99999"], "***@h"),
        (["run", "--store", db, "--partition", "1", "--base-url", f"http://{at}h/?q=1"], "***@h"),
    ]
    for args, expected in flag_cases:
        assert expected in await _refused(args, clean_env())
    env_cases = {
        "FRIENDSCRAPE_STORE": f"bigquery://{at}test-project/ds",
        "FRIENDSCRAPE_BIGQUERY_ENDPOINT": f"http://{at}127.0.0.1:9050",
        "FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT": f"{at}127.0.0.1:9060",
    }
    for name, value in env_cases.items():
        line = await _refused(["status"], clean_env(**{name: value}))
        assert name in line
        assert "must not carry a user name or password" in line
