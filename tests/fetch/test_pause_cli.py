"""A `run` whose upstream asks for a day's pause ends at once with exit 4, as users see it:
the CLI in its own process, a real local server, a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from friendscrape.simulator import SimConfig
from friendscrape.simulator.app import build_app
from reliability.harness import clean_env, partition_users, results, run_cli, seed_store

USERS = 40
SERVED = 5  # following pages answered before the upstream starts asking for a day's pause

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def pausing_upstream(config: SimConfig) -> AsyncIterator[str]:
    """The simulator's site, answering 429 with ``Retry-After: 86400`` after SERVED pages."""
    served = 0

    @web.middleware
    async def ask_for_a_day(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal served
        if served >= SERVED:
            return web.Response(status=429, headers={"Retry-After": "86400"}, text="slow down")
        served += 1
        return await handler(request)

    app = build_app(config)
    app.middlewares.append(ask_for_a_day)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_day_long_retry_after_ends_the_run_with_exit_4(tmp_path: Path) -> None:
    # Few friends each: one page per user, so the pages served finish whole users.
    config = SimConfig(users=USERS, mean_friends=5, latency=0.0, page_size=50)
    db = tmp_path / "store.db"
    await seed_store(db, config.make_graph(), 1)
    async with pausing_upstream(config) as base_url:
        started = time.monotonic()
        code, run = await run_cli(
            [
                "run",
                "--store",
                f"sqlite:///{db}",
                "--partition",
                "1",
                "--source",
                "twitter-mobile",
                "--base-url",
                base_url,
                "--concurrency",
                "1",
            ],
            env=clean_env(FRIENDSCRAPE_MAX_PAUSE="900"),
            timeout=30,
        )
        elapsed = time.monotonic() - started

    assert code == 4, run.tail()
    assert elapsed < 20, f"took {elapsed:.1f}s to give up"
    rows = results(db)
    left = len(partition_users(db, 1)) - len(rows)
    expected = (
        "friendscrape: error: 127.0.0.1 asked to pause 86400 s (over the maximum of 900 s, "
        f"FRIENDSCRAPE_MAX_PAUSE); {left} users left pending"
    )
    assert run.stderr.splitlines() == [expected], run.stderr
    # Every log line on stdout is JSON; the run says why it ended.
    assert run.stdout_other == []
    (aborted,) = run.named("run.aborted")
    assert aborted["cause"] == "PauseTooLongError"
    assert aborted["exit_code"] == 4
    # The users finished before the pause are saved; no user was failed for the pause:
    # the others stay pending, so a later run collects them.
    assert 1 <= len(rows) <= SERVED
    assert {row["status"] for row in rows.values()} <= {"ok", "protected", "not_found"}
    assert left >= USERS - SERVED
