"""After a first SIGTERM the whole stop ends within 25 s with the default settings,
whatever the upstream sends (a body that drips, a server that never answers, a page
nested 150,000 deep) and even when another process holds the store's write lock.

Heroku sends SIGKILL 30 s after SIGTERM; a stop that outlives that loses every result
not yet saved. Each test times the stop from the signal to the process's exit.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from friendscrape.models import User
from friendscrape.stores.sqlite import SqliteStore
from reliability.harness import (
    FAST_ENV,
    CliRun,
    SimProcess,
    clean_env,
    integrity,
    results,
    run_args,
    saved_rows,
    start_cli,
    store_url,
    wait_rows,
    write_lock,
)

pytestmark = pytest.mark.slow

STOP_BUDGET = 25.0  # Heroku kills 30 s after SIGTERM; the stop must be over well before
FIXTURE = Path(__file__).parent.parent / "fixtures" / "twitter-mobile"
# The settings a stop's length depends on, left at their defaults: the grace period
# (15 s), the request timeout (30 s), the write timeout (60 s) and the store's retry
# budget (5 attempts, 60 s).
_DEFAULTED = {
    "FRIENDSCRAPE_GRACE_PERIOD",
    "FRIENDSCRAPE_REQUEST_TIMEOUT",
    "FRIENDSCRAPE_WRITE_TIMEOUT",
    "FRIENDSCRAPE_STORE_ATTEMPTS",
    "FRIENDSCRAPE_STORE_RETRY_DEADLINE",
}
OK_USERS = [f"ok_user_{n}" for n in range(6)]
HOSTILE = ["deep_page", "drip_body", "no_answer"]


def default_env() -> dict[str, str]:
    env = clean_env()
    for name in _DEFAULTED & FAST_ENV.keys():
        del env[name]
    return env


@dataclass
class Hostile:
    """A mobile site whose pages for three users are hostile; ``arrived`` tells which
    hostile requests are in flight."""

    base_url: str = ""
    arrived: dict[str, asyncio.Event] = field(
        default_factory=lambda: {name: asyncio.Event() for name in HOSTILE}
    )


def following_page(name: str) -> bytes:
    """A one-user last page of ``name``'s list (the fixture's, any owner)."""
    return (FIXTURE / "following_page2_last.html").read_bytes()


@pytest.fixture
async def hostile_site() -> AsyncIterator[Hostile]:
    site = Hostile()
    never = asyncio.Event()
    deep = b"<!DOCTYPE html><html><body>" + b"<div>" * 150_000 + following_page("x")

    async def page(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name in site.arrived:
            site.arrived[name].set()
        if name == "deep_page":
            return web.Response(body=deep, content_type="text/html")
        if name == "no_answer":
            await never.wait()  # accepts the request and never answers
        if name == "drip_body":
            response = web.StreamResponse(headers={"content-type": "text/html"})
            await response.prepare(request)
            while True:  # one byte a second, forever
                await response.write(b" ")
                await asyncio.sleep(1)
        return web.Response(body=following_page(name), content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}/following", page)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    site.base_url = f"http://127.0.0.1:{port}"
    try:
        yield site
    finally:
        never.set()
        await runner.cleanup()


@pytest.fixture
async def hostile_db(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.db"
    store = SqliteStore(path)
    await store.open()
    try:
        users = [User(str(n), name, 1) for n, name in enumerate([*OK_USERS, *HOSTILE], start=1)]
        await store.import_users(users)
        await store.plan_partitions(1)
    finally:
        await store.close()
    return path


async def test_sigterm_stops_within_budget_whatever_the_upstream_sends(
    hostile_db: Path, hostile_site: Hostile
) -> None:
    args = [
        "run",
        "--store",
        store_url(hostile_db),
        "--partition",
        "1",
        "--source",
        "twitter-mobile",
        "--base-url",
        hostile_site.base_url,
    ]
    run = await start_cli(args, env=default_env())
    try:
        await stop_hostile_run(run, hostile_db, hostile_site)
    finally:
        if run.process.returncode is None:  # failed before it stopped: do not leave it
            run.process.kill()


async def stop_hostile_run(run: CliRun, hostile_db: Path, hostile_site: Hostile) -> None:
    # The ok users and the deep page are finished; the drip and the silent server hold
    # their users in flight. Before the parse was bounded, the deep page held the event
    # loop for minutes here: nothing was saved and no signal was served.
    await wait_rows(hostile_db, len(OK_USERS) + 1, run=run, timeout=20)
    for name in ("drip_body", "no_answer"):
        async with asyncio.timeout(10):
            await hostile_site.arrived[name].wait()
    signalled = time.monotonic()
    run.send(signal.SIGTERM)
    code = await run.wait(timeout=STOP_BUDGET)
    assert time.monotonic() - signalled < STOP_BUDGET
    assert code == 128 + signal.SIGTERM, run.tail()  # users left pending
    assert "Traceback" not in run.stderr

    rows = {row["screen_name"]: row for row in results(hostile_db).values()}
    assert all(rows[name]["status"] == "ok" for name in OK_USERS), rows
    assert rows["deep_page"]["status"] == "failed"
    assert "over the bound of 6,000" in rows["deep_page"]["error"]
    # Abandoned mid-list: left pending for the next run, never saved as a result.
    assert "drip_body" not in rows
    assert "no_answer" not in rows
    assert run.named("run.abandoned")[0]["users"] == 2
    assert integrity(hostile_db) == "ok"


# The store's own retry budget (5 attempts of up to 5 s) outlasts the stop's share by
# itself; a patient store (100 attempts, 10 minutes) would wait for the watchdog (3 min).
PATIENT_STORE = {
    "FRIENDSCRAPE_STORE_ATTEMPTS": "100",
    "FRIENDSCRAPE_STORE_RETRY_DEADLINE": "600",
    "FRIENDSCRAPE_STOP_TIMEOUT": "8",
    "FRIENDSCRAPE_GRACE_PERIOD": "2",
}


@pytest.mark.parametrize(
    ("extra", "budget"),
    [({}, STOP_BUDGET), (PATIENT_STORE, 8.0)],
    ids=["defaults", "patient-store-8s-stop"],
)
async def test_sigterm_while_a_write_waits_for_a_lock_exits_within_budget(
    db: Path, sticky_sim: SimProcess, extra: dict[str, str], budget: float
) -> None:
    # The sticky simulator never answers a quarter of its pages: users are in flight
    # when the signal comes and finish during the grace period, so the flush has work.
    # The first request to a host goes alone and may be a hung one: a 5 s timeout (not
    # the 30 s default) keeps that wait short.
    env = {
        **default_env(),
        "FRIENDSCRAPE_ADAPTIVE": "false",
        "FRIENDSCRAPE_REQUEST_TIMEOUT": "5",
        **extra,
    }
    args = run_args(db, sticky_sim, 1, "--batch-size", "5", concurrency=60)
    run = await start_cli(args, env=env)
    try:
        await wait_rows(db, 5, run=run)
        signalled = time.monotonic()
        run.send(signal.SIGTERM)
        await run.wait_event("run.draining", timeout=5)
        # Another process takes the write lock while the run drains: every write from
        # here on waits in SQLite's busy handler and fails "database is locked".
        with write_lock(db):
            held = saved_rows(db)
            code = await run.wait(timeout=budget)
            stopped_in = time.monotonic() - signalled
    finally:
        if run.process.returncode is None:  # failed before it stopped: do not leave it
            run.process.kill()
    assert stopped_in < budget, stopped_in
    assert code == 3, run.tail()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "database is locked" in lines[0], lines[0]
    assert "Traceback" not in run.stderr
    assert run.named("writer.failed"), run.tail()
    # Nothing saved before the lock is lost; nothing half-written after it.
    assert saved_rows(db) == held
    assert integrity(db) == "ok"
