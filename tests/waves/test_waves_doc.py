"""docs/waves.md: its shell recipes and its per-day analysis snippets (pandas, duckdb)
run as written on a job collected in two waves from the churning simulator."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from friendscrape.simulator import SimConfig
from reliability.harness import clean_env, run_cli, start_simulator

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "waves.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _section(title: str) -> list[tuple[str, str]]:
    text = DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text[start:end])]


async def _ok(folder: Path, *args: str) -> None:
    store = f"sqlite:///{folder / 'friendscrape.db'}"
    code, run = await run_cli([*args, "--store", store], env=clean_env())
    assert code == 0, run.tail()


async def test_the_per_day_recipes_count_the_exported_changes(tmp_path: Path) -> None:
    config = SimConfig(users=60, mean_friends=20.0, latency=0.0, churn=0.3)
    users = tmp_path / "users.csv"
    with users.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "screen_name"])
        writer.writerows((a.user_id, a.screen_name) for a in config.make_graph().accounts())
    await _ok(tmp_path, "users", "import", str(users), "--source", "twitter-mobile")
    await _ok(tmp_path, "partitions", "plan", "--count", "1")
    for wave in (1, 2):
        if wave > 1:
            await _ok(tmp_path, "waves", "new")
        sim = start_simulator(SimConfig(**{**_fields(config), "wave": wave}))
        try:
            await _ok(tmp_path, "run", "--partition", "1", "--base-url", sim.base_url)
        finally:
            sim.stop()
    for out in ("changes.csv", "changes.parquet"):
        await _ok(tmp_path, "export", "--format", "changes", "--output", str(tmp_path / out))
    with (tmp_path / "changes.csv").open(newline="") as read:
        counts = Counter(r["change"] for r in csv.DictReader(read))
    assert counts["follow"] > 0
    assert counts["unfollow"] > 0

    snippets = _section("Follows and unfollows per day")
    assert [kind for kind, _ in snippets] == ["python", "python"]
    pandas_out, duckdb_out = (_python(code, tmp_path) for _, code in snippets)
    # One day: the pandas table's row, and duckdb's tuple, hold the two counts.
    day_row = pandas_out.strip().splitlines()[-1].split(",")
    header = pandas_out.strip().splitlines()[0].split(",")
    assert int(day_row[header.index("follow")]) == counts["follow"]
    assert int(day_row[header.index("unfollow")]) == counts["unfollow"]
    assert f"{counts['follow']}, {counts['unfollow']})" in duckdb_out


def _fields(config: SimConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def _python(code: str, folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_pages_shell_lines_name_real_options() -> None:
    for kind, code in _section("Export a wave, or what changed"):
        assert kind == "sh"
        for line in code.splitlines():
            args = line.split("#")[0].split()[1:]
            done = subprocess.run(
                [sys.executable, "-m", "friendscrape.cli", *args, "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
