"""Bad input wherever a user types: one clear error line on stderr, non-zero, no traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import clean_env, run_cli, seed_store, store_url

pytestmark = pytest.mark.slow

BASE = "http://127.0.0.1:9"  # never contacted: every case fails before a request


async def _error_line(args: list[str]) -> str:
    code, run = await run_cli(args, env=clean_env(), timeout=30)
    assert code != 0, (args, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, (args, run.stderr)
    assert lines[0].startswith("friendscrape: error: "), lines[0]
    return lines[0].lower()


def _run(db: Path, *extra: str, partition: str = "1") -> list[str]:
    return ["run", "--store", store_url(db), "--partition", partition, "--base-url", BASE, *extra]


async def test_every_bad_input_is_one_clear_line(tmp_path: Path, graph: SyntheticGraph) -> None:
    planned = tmp_path / "planned.db"
    await seed_store(planned, graph, 3)
    empty = tmp_path / "empty.db"
    good_csv = tmp_path / "users.csv"
    good_csv.write_text("user_id,screen_name\n1,ada_lovelace\n", encoding="utf-8")
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,name\n1,ada\n", encoding="utf-8")
    unplanned = tmp_path / "unplanned.db"

    async def import_then_run() -> str:
        code, run = await run_cli(
            ["users", "import", "--store", store_url(unplanned), str(good_csv)], env=clean_env()
        )
        assert code == 0, run.stderr
        return await _error_line(_run(unplanned))

    cases = {
        "unknown partition": (_error_line(_run(planned, partition="7")), "not in the plan"),
        "no plan yet": (import_then_run(), "no partition plan yet"),
        "empty users table": (_error_line(_run(empty)), "no users"),
        "unreachable store": (
            _error_line(_run(tmp_path / "no" / "such" / "dir.db")),
            "folder does not exist",
        ),
        "malformed store URL": (
            _error_line(["run", "--store", "sqlite:/x.db", "--partition", "1"]),
            "store url",
        ),
        "store URL without a scheme": (
            _error_line(["partitions", "show", "--store", "friendscrape.db"]),
            "no scheme",
        ),
        "concurrency 0": (_error_line(_run(planned, "--concurrency", "0")), "concurrency"),
        "unknown source": (_error_line(_run(planned, "--source", "myspace")), "unknown source"),
        "missing CSV": (
            _error_line(
                ["users", "import", "--store", store_url(empty), str(tmp_path / "nope.csv")]
            ),
            "cannot read",
        ),
        "bad CSV header": (
            _error_line(["users", "import", "--store", store_url(empty), str(bad_header)]),
            "header must be user_id,screen_name",
        ),
        "unknown partition name": (
            _error_line(_run(planned, partition="seven")),
            "partition",
        ),
    }
    lines = await asyncio.gather(*(coro for coro, _ in cases.values()))
    for (case, (_, expected)), line in zip(cases.items(), lines, strict=True):
        assert expected.lower() in line, (case, line)
