"""An upstream down in disguise: every answer a 200 that is not the platform's (a captive
portal's page, an empty body, JSON of another shape). The run ends with exit 5 and one
line, its users stay pending, and a run against the real simulator then collects them
all (each command a new process, on each source; SQLite, and once the BigQuery server)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from friendscrape.simulator import SimConfig, SyntheticGraph
from friendscrape.simulator.formats import (
    FORMATS,
    HANDLE_FORMATS,
    api_truth,
    import_user,
    write_users_csv,
)
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_simulator, store_url

pytestmark = pytest.mark.slow

USERS = 60
UPSTREAM_DOWN = 5

# A hotel's sign-in page: no login form (no password field), so not a login wall either.
CAPTIVE_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Welcome to Seaside Hotel WiFi</title></head>"
    b"<body><h1>Welcome!</h1><p>Please accept the terms of use to get online.</p>"
    b'<form method="post" action="/portal/accept"><input type="checkbox" name="terms">'
    b"<button>Connect</button></form></body></html>"
)
# JSON, but no platform's: an appliance's status document.
WRONG_SHAPE = b'{"status": "ok", "items": [], "message": "service healthy"}'

ANSWERS: dict[str, tuple[bytes, str]] = {
    "captive_portal": (CAPTIVE_PORTAL, "text/html; charset=utf-8"),
    "empty_body": (b"", "application/json"),
    "wrong_shape_json": (WRONG_SHAPE, "application/json"),
}


def _config() -> SimConfig:
    return SimConfig(users=USERS, mean_friends=20.0, latency=0.0)


@pytest.fixture(scope="module")
def good_sim() -> Iterator[SimProcess]:
    """The real simulator, serving the graph the users come from."""
    sim = start_simulator(_config())
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def truth_graph() -> SyntheticGraph:
    """The simulator's graph, for the truth of each user."""
    return _config().make_graph()


@dataclass(frozen=True)
class StandIn:
    """The local stand-in upstream: every request gets the same 200 answer."""

    base_url: str
    requests: list[str]


@asynccontextmanager
async def _serve(body: bytes, content_type: str) -> AsyncIterator[StandIn]:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(status=200, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield StandIn(f"http://127.0.0.1:{port}", seen)
    finally:
        await runner.cleanup()


@pytest.fixture(params=sorted(ANSWERS))
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[StandIn]:
    """A stand-in upstream answering each of ``ANSWERS`` in turn."""
    body, content_type = ANSWERS[request.param]
    async with _serve(body, content_type) as served:
        yield served


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, and the environment its processes get."""

    url: str
    env: dict[str, str]

    async def cli(self, *args: str, timeout: float = 120.0) -> tuple[int, CliRun]:
        return await run_cli([*args, "--store", self.url], env=self.env, timeout=timeout)


def _status(run: CliRun) -> dict[str, Any]:
    document = json.loads("\n".join(run.stdout_other))
    total = document["total"]
    assert isinstance(total, dict)
    return total


async def _exits_5_then_collects_all(
    job: Job,
    tmp_path: Path,
    *,
    source: str,
    bad: StandIn,
    good: SimProcess,
    graph: SyntheticGraph,
    handles: bool = False,
) -> None:
    users_csv = tmp_path / "users.csv"
    assert write_users_csv(graph, users_csv, source, handles=handles) == USERS
    code, ran = await job.cli("users", "import", str(users_csv))
    assert code == 0, ran.tail()
    code, ran = await job.cli("partitions", "plan", "--count", "1")
    assert code == 0, ran.tail()
    run = ["run", "--partition", "1", "--source", source, "--concurrency", "8"]

    code, down = await job.cli(*run, "--base-url", bad.base_url)
    assert code == UPSTREAM_DOWN, down.tail()
    assert bad.requests, "the stand-in was never asked"
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1, down.stderr
    assert "Traceback" not in down.stderr
    line = lines[0]
    assert line.startswith("friendscrape: error: upstream down or wrong"), line
    assert "not the platform's answer" in line, line
    assert f"{bad.base_url}/" in line, line
    tripped = down.named("breaker.tripped")
    assert [event["cause"] for event in tripped] == ["not_platform"], down.tail()
    assert not down.named("partition.complete")
    # No user saved as failed (or anything else): all 60 are still to collect.
    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    total = _status(status)
    assert total["collected"] == 0, total
    assert total["remaining"] == USERS, total
    assert total["percent_done"] < 100, total

    code, up = await job.cli(*run, "--base-url", good.base_url)
    assert code == 0, up.tail()
    assert up.named("partition.complete"), up.tail()
    code, status = await job.cli("status", "--json")
    assert code == 0, status.tail()
    total = _status(status)
    assert (total["collected"], total["percent_done"]) == (USERS, 100), total

    exported = tmp_path / "friends.jsonl"
    code, ran = await job.cli("export", "--format", "jsonl", "--output", str(exported))
    assert code == 0, ran.tail()
    rows = {
        row["user_id"]: row
        for row in map(json.loads, exported.read_text(encoding="utf-8").splitlines())
    }
    assert len(rows) == USERS
    for account in graph.accounts():
        user = import_user(source, graph, account, handles=handles)
        row = rows[user.user_id]
        if source == "twitter-mobile":
            truth = graph.expected(account.screen_name)
            status_value, names = truth["status"], truth["friends"]
        else:
            expected, names, _ids = api_truth(source, graph, account, handles=handles)
            status_value = expected.value
        assert row["status"] == status_value, (user, row["error"])
        if status_value == "ok":
            assert row["friend_names"] == names, user


@pytest.mark.parametrize("source", FORMATS)
async def test_a_200_that_is_not_the_platforms_answer_exits_5_with_users_pending(
    source: str,
    tmp_path: Path,
    stand_in: StandIn,
    good_sim: SimProcess,
    truth_graph: SyntheticGraph,
) -> None:
    job = Job(store_url(tmp_path / "job.db"), clean_env())
    await _exits_5_then_collects_all(
        job, tmp_path, source=source, bad=stand_in, good=good_sim, graph=truth_graph
    )


@pytest.mark.parametrize("source", HANDLE_FORMATS)
async def test_handles_whose_look_ups_get_a_captive_portal_stay_pending(
    source: str, tmp_path: Path, good_sim: SimProcess, truth_graph: SyntheticGraph
) -> None:
    # The look-ups fail first: their users go on to be looked up one by one by their
    # collectors, whose failures the breaker sees, not saved failed by the look-up.
    job = Job(store_url(tmp_path / "job.db"), clean_env())
    body, content_type = ANSWERS["captive_portal"]
    async with _serve(body, content_type) as bad:
        await _exits_5_then_collects_all(
            job, tmp_path, source=source, bad=bad, good=good_sim, graph=truth_graph, handles=True
        )


@pytest.mark.bigquery
async def test_a_captive_portal_leaves_users_pending_on_bigquery_too(
    tmp_path: Path,
    good_sim: SimProcess,
    truth_graph: SyntheticGraph,
    bq_emulator: Any,
    bq_dataset: str,
) -> None:
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=bq_emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=bq_emulator.grpc_endpoint,
    )
    job = Job(f"bigquery://test-project/{bq_dataset}", env)
    body, content_type = ANSWERS["captive_portal"]
    async with _serve(body, content_type) as bad:
        await _exits_5_then_collects_all(
            job, tmp_path, source="x-api", bad=bad, good=good_sim, graph=truth_graph
        )
