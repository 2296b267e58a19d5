"""Drive `friendscrape` as real processes: a simulator subprocess, CLI runs, their JSON logs.

Nothing here sleeps to order events: every wait is on a condition (a log event, a row
count in the SQLite file, a process exit) with a deadline, and fails loudly when the
deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from friendscrape.configdoc import environ_without_configuration
from friendscrape.models import User
from friendscrape.simulator import SimConfig, SyntheticGraph
from friendscrape.simulator.process import SimulatorProcess, start_simulator_process
from friendscrape.stores import lists_codec
from friendscrape.stores.sqlite import SqliteStore

# One graph for every simulator of the suite, so a run against a faulty simulator can be
# finished against a clean one and both agree on the truth.
GRAPH_USERS = 600
GRAPH_MEAN_FRIENDS = 60.0
POLL = 0.02

# Short timeouts and backoffs so faults cost milliseconds, not minutes.
FAST_ENV = {
    "FRIENDSCRAPE_LOG_FORMAT": "json",
    "FRIENDSCRAPE_LOG_LEVEL": "debug",
    "FRIENDSCRAPE_REQUEST_TIMEOUT": "1",
    "FRIENDSCRAPE_CONNECT_TIMEOUT": "1",
    "FRIENDSCRAPE_RETRY_BASE_WAIT": "0.02",
    "FRIENDSCRAPE_RETRY_MAX_WAIT": "0.2",
    "FRIENDSCRAPE_FETCH_ATTEMPTS": "4",
    "FRIENDSCRAPE_FETCH_RETRY_DEADLINE": "10",
    "FRIENDSCRAPE_FLUSH_INTERVAL": "0.2",
    "FRIENDSCRAPE_PROGRESS_INTERVAL": "1",
    "FRIENDSCRAPE_GRACE_PERIOD": "5",
    "FRIENDSCRAPE_WRITE_TIMEOUT": "2",
    "FRIENDSCRAPE_STORE_ATTEMPTS": "5",
    "FRIENDSCRAPE_STORE_RETRY_DEADLINE": "20",
}


def graph_config(**faults: Any) -> SimConfig:
    """The suite's graph, served with ``faults`` (latency, rates, hostile)."""
    return SimConfig(users=GRAPH_USERS, mean_friends=GRAPH_MEAN_FRIENDS, **faults)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: this one less any friendscrape settings, plus FAST_ENV."""
    env = environ_without_configuration(os.environ)
    env.update(FAST_ENV)
    env.update(extra)
    return env


# -- the simulator ---------------------------------------------------------------------


SimProcess = SimulatorProcess


def start_simulator(config: SimConfig, *, timeout: float = 30.0) -> SimProcess:
    """Start `python -m friendscrape.simulator` serving ``config`` on a free port."""
    return start_simulator_process(config, env=clean_env(), timeout=timeout)


# -- the store -------------------------------------------------------------------------


def store_url(path: Path) -> str:
    """The CLI's store URL of a SQLite file."""
    return f"sqlite:///{path}"


async def seed_store(path: Path, graph: SyntheticGraph, partitions: int) -> None:
    """Import the graph's accounts into a fresh SQLite store and plan ``partitions``."""
    store = SqliteStore(path)
    await store.open()
    try:
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in graph.accounts()]
        )
        await store.plan_partitions(partitions)
    finally:
        await store.close()


@contextmanager
def _read_db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def saved_rows(path: Path) -> int:
    """Result rows in the store right now (a reader never blocks the run in WAL mode)."""
    try:
        with _read_db(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def partition_users(path: Path, partition: int) -> list[tuple[str, str]]:
    """(user_id, screen_name) of every user of a partition."""
    with _read_db(path) as conn:
        rows = conn.execute(
            "SELECT user_id, screen_name FROM users WHERE partition = ? ORDER BY seq",
            (partition,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def results(path: Path) -> dict[str, dict[str, Any]]:
    """Every result row by user_id."""
    with _read_db(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM user_friends").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = dict(row)
        # Lists as the store keeps them (compact blobs), read as the store reads them.
        record["friend_names"] = lists_codec.decode(record["friend_names"])
        record["friend_ids"] = lists_codec.decode(record["friend_ids"])
        assert record["user_id"] not in out, f"two rows for {record['user_id']}"
        out[record["user_id"]] = record
    return out


def integrity(path: Path) -> str:
    """PRAGMA integrity_check of the store file."""
    with _read_db(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def assert_partition_matches_truth(
    path: Path, partition: int, graph: SyntheticGraph, *, attempts_once: bool = False
) -> dict[str, dict[str, Any]]:
    """Every user of the partition has exactly one row, equal to the simulator's truth."""
    users = partition_users(path, partition)
    rows = results(path)
    missing = [name for uid, name in users if uid not in rows]
    assert not missing, f"{len(missing)} users have no row, e.g. {missing[:5]}"
    wrong = []
    for uid, name in users:
        row = rows[uid]
        truth = graph.expected(name)
        if row["status"] != truth["status"]:
            wrong.append((name, row["status"], truth["status"], row["error"]))
        elif row["status"] == "ok" and row["friend_names"] != truth["friends"]:
            wrong.append((name, "list", len(row["friend_names"]), len(truth["friends"])))
        elif attempts_once and row["attempts"] != 1:
            wrong.append((name, "attempts", row["attempts"]))
    assert not wrong, f"{len(wrong)} users differ from the truth, e.g. {wrong[:5]}"
    return rows


# -- CLI runs --------------------------------------------------------------------------


@dataclass
class CliRun:
    """A running `friendscrape` command whose JSON log lines (on stderr) are collected as
    they come, and its results (stdout) line by line."""

    process: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)
    stdout_other: list[str] = field(default_factory=list)
    stderr: str = ""  # the lines of stderr that are not JSON log events
    peak_rss_kb: int | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    async def _read_stdout(self) -> None:
        # A command's results (tables, JSON documents): never log events, which go to stderr.
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.stdout_other.append(line.decode("utf-8", "replace").strip())
            self._changed.set()
        self._changed.set()

    async def _read_stderr(self) -> None:
        # Logs are on stderr: its JSON lines are the events; every other line (the error
        # line, warnings, a traceback) is kept in ``stderr``.
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode("utf-8", "replace")
            try:
                event = json.loads(text)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self.events.append(event)
                self._changed.set()
            else:
                self.stderr += text
        self._changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name`` so far."""
        return [e for e in self.events if e.get("event") == name]

    async def wait_event(
        self,
        name: str,
        *,
        timeout: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda _e: True,
    ) -> dict[str, Any]:
        """The first event called ``name`` that matches ``where``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.named(name):
                if where(event):
                    return event
            if self.process.returncode is not None and all(r.done() for r in self._readers):
                msg = f"exited {self.process.returncode} before {name}: {self.tail()}"
                raise AssertionError(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                msg = f"no {name} event within {timeout}s: {self.tail()}"
                raise AssertionError(msg)
            self._changed.clear()
            try:
                async with asyncio.timeout(min(left, 0.5)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def wait(self, timeout: float = 60.0) -> int:
        """The exit code; kills the process and fails when it runs past ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                code = await self.process.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            msg = f"still running after {timeout}s: {self.tail()}"
            raise AssertionError(msg) from None
        return code

    def send(self, sig: signal.Signals) -> None:
        """Send a signal to the process."""
        self.process.send_signal(sig)

    def tail(self) -> str:
        """The last few events and stderr, for failure messages."""
        last = [
            {k: v for k, v in e.items() if k in {"event", "error", "cause"}}
            for e in self.events[-8:]
        ]
        return f"events={last} stderr={self.stderr[-800:]!r}"


async def start_cli(args: Sequence[str], *, env: dict[str, str] | None = None) -> CliRun:
    """Start ``python -m friendscrape.cli ARGS`` with its logs read as they arrive."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "friendscrape.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else clean_env(),
        limit=16 * 1024 * 1024,
    )
    run = CliRun(process)
    run._readers = [
        asyncio.create_task(run._read_stdout()),
        asyncio.create_task(run._read_stderr()),
    ]
    return run


async def run_cli(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> tuple[int, CliRun]:
    """Run a command to its end; (exit code, the run)."""
    run = await start_cli(args, env=env)
    code = await run.wait(timeout)
    return code, run


def run_args(
    db: Path, sim: SimProcess, partition: int, *extra: str, concurrency: int = 20
) -> list[str]:
    """`run` arguments for one partition of ``db`` against ``sim``."""
    return [
        "run",
        "--store",
        store_url(db),
        "--partition",
        str(partition),
        "--source",
        "twitter-mobile",
        "--base-url",
        sim.base_url,
        "--concurrency",
        str(concurrency),
        *extra,
    ]


async def wait_rows(
    db: Path, at_least: int, *, run: CliRun | None = None, timeout: float = 30.0
) -> int:
    """Poll the store until it holds ``at_least`` result rows; the count seen."""
    deadline = time.monotonic() + timeout
    while True:
        count = saved_rows(db)
        if count >= at_least:
            return count
        if run is not None and run.process.returncode is not None:
            msg = f"exited {run.process.returncode} with {count} rows: {run.tail()}"
            raise AssertionError(msg)
        if time.monotonic() > deadline:
            msg = f"only {count} rows after {timeout}s (waiting for {at_least})"
            raise AssertionError(msg)
        await asyncio.sleep(POLL)


def kill_now(run: CliRun) -> None:
    """SIGKILL: no handler runs, nothing is flushed."""
    run.process.kill()


@contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold the store's write lock from another connection until the block ends."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()
