"""Commands that only read never change a store, and refuse a file that is not one."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bqemu import Emulator
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.configparts import store_config
from friendscrape.errors import StoreUnavailableError, UsageError
from friendscrape.models import User
from friendscrape.stores import open_store
from friendscrape.stores.sqlite import SqliteStore
from storefixtures import bq_settings

READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["export", "--format", "jsonl"],
    ["report", "--output", "report.html"],
    ["partitions", "show"],
    ["estimate", "--from-status"],
]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = environ_without_configuration(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fingerprint(path: Path) -> tuple[bytes, int, list[str]]:
    """Bytes, mtime and the files beside it (a journal left behind would show)."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def foreign_file(folder: Path) -> Path:
    """Another program's SQLite file: one table of its own, rollback journal."""
    path = folder / "places.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE places (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO places (name) VALUES ('home')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_command_leaves_a_foreign_sqlite_file_untouched(
    tmp_path: Path, command: list[str]
) -> None:
    path = foreign_file(tmp_path)
    before = fingerprint(path)
    assert journal_mode(path) == "delete"

    done = cli(*command, "--store", f"sqlite:///{path}", cwd=tmp_path)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "not a friendscrape store" in lines[0]
    assert "Traceback" not in done.stderr
    assert fingerprint(path) == before
    assert journal_mode(path) == "delete"


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    before = fingerprint(path)
    done = cli("status", "--store", f"sqlite:///{path}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert fingerprint(path)[:2] == before[:2]


async def test_a_write_command_refuses_a_foreign_file_too(tmp_path: Path) -> None:
    path = foreign_file(tmp_path)
    before = fingerprint(path)
    store = SqliteStore(path)
    with pytest.raises(StoreUnavailableError, match="not a friendscrape store"):
        await store.open()
    assert fingerprint(path)[:2] == before[:2]


async def test_status_reads_a_store_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(str(i), f"u{i}", 1) for i in range(1, 7)])
    await store.plan_partitions(2)
    await store.close()
    # A store written before leases existed: the read must not add the table back.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE partition_leases")
    conn.commit()
    conn.close()
    before = fingerprint(path)[:2]

    done = cli("status", "--json", "--store", f"sqlite:///{path}", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert '"users": 6' in done.stdout
    assert fingerprint(path)[:2] == before
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "partition_leases" not in tables


def test_memory_store_is_refused(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,alice\n2,bob\n")
    done = cli("users", "import", str(users), "--store", "sqlite:///:memory:", cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "in-memory" in done.stderr
    assert "added" not in done.stdout
    with pytest.raises(UsageError):
        open_store(store_config(Settings(store="sqlite:///:memory:")))


@pytest.mark.bigquery
async def test_bigquery_read_only_open_creates_nothing(
    bq_emulator: Emulator, bq_dataset: str
) -> None:
    settings = bq_settings(bq_emulator.endpoint, bq_dataset)
    reader = open_store(store_config(settings), read_only=True)
    with pytest.raises(StoreUnavailableError, match="no BigQuery dataset"):
        await reader.open()
    await reader.close()
    # The dataset still does not exist: a writer then creates it, and a reader opens it.
    writer = open_store(store_config(settings), create=True)
    await writer.open()
    await writer.import_users([User("1", "one", 1)])
    await writer.close()
    reader = open_store(store_config(settings), read_only=True)
    await reader.open()
    try:
        assert await reader.user_count() == 1
    finally:
        await reader.close()
