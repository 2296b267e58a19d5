"""The SQLite store's running totals after each command that writes results or moves
users, each command a process of its own: a run, a retry of failed users, a replan, an
import of new users, a new wave and a run in it. After each, the totals equal a count of
the results and status's output is byte for byte the one counted from every row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import SimProcess, run_args, run_cli, store_url
from totalscheck import assert_status_as_counted, assert_totals_exact

pytestmark = pytest.mark.slow


async def _command(*args: str) -> None:
    code, run = await run_cli(list(args))
    assert code == 0, run.tail()


async def _checked(db: Path) -> None:
    assert_totals_exact(db)
    await assert_status_as_counted(db, datetime.now(UTC))
    await _command("status", "--store", store_url(db))


async def test_totals_stay_exact_through_every_command(
    tmp_path: Path, db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    await _command(*run_args(db, clean_sim, 1))
    await _checked(db)
    await _command(*run_args(db, clean_sim, 2))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "UPDATE user_friends SET status = 'failed', error = 'timeout after retries: x',"
        " friend_count = 0 WHERE partition = 2 AND rowid % 4 = 0"
    )
    conn.close()
    await _checked(db)
    await _command(*run_args(db, clean_sim, 2, "--retry-failed"))
    await _checked(db)
    await _command("partitions", "plan", "--count", "5", "--force", "--store", store_url(db))
    await _checked(db)
    await _command(*run_args(db, clean_sim, 5))
    await _checked(db)
    more = tmp_path / "more.csv"
    more.write_text("user_id,screen_name\n" + "".join(f"9{i:04d},extra{i}\n" for i in range(30)))
    await _command("users", "import", str(more), "--store", store_url(db))
    await _checked(db)
    await _command("waves", "new", "--store", store_url(db))
    await _command(*run_args(db, clean_sim, 1))
    await _checked(db)
