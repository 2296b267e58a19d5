"""Checks of the SQLite store's running totals against a count of every result: the
totals' rows, what status reads from them, and status's output itself (table and JSON,
byte for byte) against the same store read with the totals taken away, which status then
counts from every row."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from friendscrape.commands.progress.figures import gather_status
from friendscrape.commands.progress.waves import wave_notes
from friendscrape.commands.status.command import to_json
from friendscrape.commands.status.table import render_table
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores import sqlite_waves as waves
from friendscrape.stores.sqlite import SqliteStore

_KEY = "wave, partition, status"
_COUNTS = "users, friends, micros, changed, unplaced"


def assert_totals_exact(path: Path) -> None:
    """Every group's counts equal a count of the rows; its first start and last end too,
    or (stale) bound them; the figures status reads equal the full count's."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        assert totals.kept(conn)
        conn.execute("BEGIN")  # one snapshot for the totals and the count
        kept = {
            tuple(r)[:3]: r
            for r in conn.execute(f"SELECT * FROM result_totals ORDER BY {_KEY}").fetchall()
        }
        conn.execute("CREATE TEMP TABLE fresh AS SELECT * FROM result_totals WHERE 0")
        conn.execute(totals._COUNT_RESULTS.replace("INTO result_totals", "INTO temp.fresh"))
        fresh = {tuple(r)[:3]: r for r in conn.execute("SELECT * FROM temp.fresh").fetchall()}
        assert kept.keys() == fresh.keys()
        for key, row in kept.items():
            want = fresh[key]
            assert [row[c] for c in _COUNTS.split(", ")] == [
                want[c] for c in _COUNTS.split(", ")
            ], key
            if row["stale_start"]:
                assert row["first_start"] <= want["first_start"], key
            else:
                assert row["first_start"] == want["first_start"], key
            if row["stale_end"]:
                assert row["last_end"] >= want["last_end"], key
            else:
                assert row["last_end"] == want["last_end"], key
        history = conn.execute("SELECT * FROM history_totals ORDER BY wave").fetchall()
        counted = conn.execute(
            """SELECT wave, COUNT(*), SUM(status = 'ok'), SUM(COALESCE(changed, 0))
               FROM wave_history GROUP BY wave ORDER BY wave"""
        ).fetchall()
        assert [tuple(r) for r in history if r["done"]] == [tuple(r) for r in counted]
        wave = waves.current(conn)
        for since in ("2000-01-01", "2024-05-01T12:00:30", "2100-01-01"):
            got = totals.summary(conn, wave if wave > 1 else None, since)
            assert got == totals.recount(conn, waves.in_current(conn), since), since
        conn.execute("COMMIT")
    finally:
        conn.close()


def without_totals(path: Path, copy: Path) -> Path:
    """A copy of the store with no totals: status counts it from every row."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        for name in totals.TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute("DROP TABLE result_totals")
        conn.execute("DROP TABLE history_totals")
    finally:
        conn.close()
    return copy


async def status_output(path: Path, now: datetime) -> tuple[str, str]:
    """status's table and JSON document of the store at ``now``, as the command reads
    them (read-only, wave notes under the figures)."""
    store = SqliteStore(path, read_only=True)
    await store.open()
    try:
        report = await gather_status(store, now=now)
        report = replace(report, notes=(*report.notes, *await wave_notes(store)))
    finally:
        await store.close()
    return render_table(report, width=200), json.dumps(to_json(report), indent=1)


async def assert_status_as_counted(path: Path, now: datetime) -> None:
    """status's output equals, byte for byte, its output counted from every row (at
    ``now``, and an hour later, when the recent window holds other results)."""
    copy = without_totals(path, path.with_name(f"counted-{path.name}"))
    for moment in (now, now + timedelta(hours=1), now + timedelta(days=400)):
        assert await status_output(path, moment) == await status_output(copy, moment)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
