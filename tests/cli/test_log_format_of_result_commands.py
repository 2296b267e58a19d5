"""Commands that print a result (import, plans, status, export) log to stderr as console
lines for people, or as JSON lines when the log format asked is json: a one-off dyno's
logs reach Papertrail as events like a run's."""

from __future__ import annotations

import json
from pathlib import Path

from cli.conftest import cli


def test_a_result_command_logs_json_lines_when_asked(tmp_path: Path) -> None:
    (tmp_path / "first.csv").write_text("user_id,screen_name\n1,one\n2,two\n")
    (tmp_path / "later.csv").write_text("user_id,screen_name\n3,three\n")
    assert cli("users", "import", "first.csv", "--source", "bluesky", cwd=tmp_path).code == 0
    assert cli("partitions", "plan", "--count", "1", cwd=tmp_path).code == 0
    assert cli("users", "import", "later.csv", cwd=tmp_path).code == 0

    placed = cli("partitions", "place", cwd=tmp_path, env={"FRIENDSCRAPE_LOG_FORMAT": "json"})
    assert placed.code == 0, placed.err
    assert placed.out.startswith("placed 1 users: 1 to partition 1\n")
    events = [json.loads(line) for line in placed.err.splitlines()]
    assert [(e["event"], e["level"], e["users"]) for e in events] == [("plan.placed", "info", 1)]

    # Unset (auto, not a terminal): console lines for people, as before.
    again = cli("partitions", "place", cwd=tmp_path)
    assert again.code == 0, again.err
    assert "plan.placed" in again.err
    assert not again.err.lstrip().startswith("{")
