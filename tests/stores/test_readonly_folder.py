"""status and export read a SQLite store this account cannot write (issue 22): a read-only
file, a read-only folder; where a read cannot be made, the one line says why instead of
calling the file "not a friendscrape store". Every command a new process.

Tests may run as root, whom file modes do not stop: the commands then run with the
capabilities that bypass them dropped (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a mode
binds them as it binds any account.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from friendscrape.configdoc import environ_without_configuration
from friendscrape.models import User
from friendscrape.stores.sqlite import SqliteStore
from storefixtures import ok_result

_PR_CAPBSET_DROP = 24
_BYPASS_MODES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def _as_plain_account() -> None:
    """In the child before exec: root loses the capabilities that ignore file modes."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _BYPASS_MODES:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", *args],
        cwd=cwd,
        env=environ_without_configuration(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_as_plain_account,
    )


@pytest.fixture
def modes_bind(tmp_path: Path) -> None:
    """Skip where a dropped capability still lets a write through (no CAP_SETPCAP)."""
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    try:
        check = subprocess.run(
            [sys.executable, "-c", f"open({str(probe / 'f')!r}, 'w')"],
            capture_output=True,
            check=False,
            preexec_fn=_as_plain_account,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop the capabilities that bypass file modes: {exc}")
    finally:
        probe.chmod(0o755)
    if check.returncode == 0:
        pytest.skip("file modes do not bind this account")


async def _store(folder: Path) -> Path:
    path = folder / "job.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(str(i), f"user_{i}", 2) for i in range(1, 5)])
    await store.plan_partitions(2)
    await store.save([ok_result("1", ("user_2", "user_3"), screen_name="user_1")])
    await store.close()
    return path


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder made read-only by the test (given back writable at its end)."""
    folder = tmp_path / "archive"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def _check_reads(path: Path, cwd: Path) -> None:
    status = cli("status", "--json", "--store", f"sqlite:///{path}", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["total"]["users"] == 4
    export = cli("export", "--format", "jsonl", "--store", f"sqlite:///{path}", cwd=cwd)
    assert export.returncode == 0, export.stderr
    rows = [json.loads(line) for line in export.stdout.splitlines()]
    assert [(r["user_id"], r["friend_names"]) for r in rows] == [("1", ["user_2", "user_3"])]


@pytest.mark.usefixtures("modes_bind")
async def test_status_and_export_read_a_store_in_a_read_only_folder(
    locked: Path, tmp_path: Path
) -> None:
    path = await _store(locked)
    assert sorted(p.name for p in locked.iterdir()) == ["job.db"]  # no -wal, no -shm
    path.chmod(0o444)
    locked.chmod(0o555)

    _check_reads(path, tmp_path)

    assert sorted(p.name for p in locked.iterdir()) == ["job.db"]
    # A write command still says it cannot write.
    plan = cli("partitions", "plan", "--count", "3", "--store", f"sqlite:///{path}", cwd=tmp_path)
    assert plan.returncode == 2, plan.stderr
    assert "attempt to write a readonly database" in plan.stderr


@pytest.mark.usefixtures("modes_bind")
async def test_status_and_export_read_a_read_only_file(tmp_path: Path) -> None:
    path = await _store(tmp_path)
    path.chmod(0o444)
    _check_reads(path, tmp_path)


@pytest.mark.usefixtures("modes_bind")
async def test_a_log_that_cannot_be_read_in_a_read_only_folder_is_said(
    locked: Path, tmp_path: Path
) -> None:
    # A store copied with its write-ahead log but not the log's index: the log's
    # changes can only be read through an index, which the folder cannot hold.
    source = await _store(tmp_path)
    writer = sqlite3.connect(source)
    try:
        writer.execute("INSERT INTO users (user_id, screen_name) VALUES ('5', 'user_5')")
        writer.commit()
        shutil.copy(source, locked / "job.db")
        shutil.copy(source.with_name("job.db-wal"), locked / "job.db-wal")
    finally:
        writer.close()
    path = locked / "job.db"
    locked.chmod(0o555)

    for command in (["status"], ["export", "--format", "jsonl"]):
        done = cli(*command, "--store", f"sqlite:///{path}", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines == [
            (
                f"friendscrape: error: cannot open SQLite store {str(path)!r} for reading: "
                "its write-ahead log job.db-wal holds changes not yet in the file, and SQLite "
                "cannot create the job.db-shm index it reads them through in a read-only "
                "folder: make the folder writable, or copy the store with both files "
                "somewhere writable"
            )
        ], done.stderr

    locked.chmod(0o755)  # with a writable folder the same files read, the log's row too
    done = cli("status", "--json", "--store", f"sqlite:///{path}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["unplaced_users"] == 1  # user 5, from the log
