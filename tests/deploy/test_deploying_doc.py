"""docs/deploying.md agrees with the code and the deploy files it describes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from friendscrape.configdoc import environ_without_configuration
from friendscrape.worker import PARTITION_ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")


def test_precedence_sentence_follows_the_code() -> None:
    sentence = next(line for line in PAGE.split("\n\n") if "wins when set" in line)
    named = re.findall(r"`([A-Z_]+)`", sentence)
    assert tuple(named[: len(PARTITION_ENV_NAMES)]) == PARTITION_ENV_NAMES


def test_procfile_shown_is_the_procfile() -> None:
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8").strip()
    assert f"```\n{procfile}\n```" in PAGE


def test_the_deploy_files_named_exist() -> None:
    for path in re.findall(r"`((?:deploy/|docs/)?[\w./-]+\.(?:yaml|sh|md))`", PAGE):
        if "/" in path:
            assert (ROOT / path).exists(), path
    assert "deploy/kubernetes/job.yaml" in PAGE
    assert "deploy/cloud-run/job.sh" in PAGE


def _console_blocks() -> list[tuple[list[str], list[str]]]:
    """Each ``console`` block: the command after ``$ `` as words, and the lines shown."""
    blocks = re.findall(r"^```console\n(.*?)^```", PAGE, re.MULTILINE | re.DOTALL)
    found = []
    for block in blocks:
        command, *shown = block.rstrip("\n").split("\n")
        assert command.startswith("$ friendscrape "), command
        found.append((shlex.split(command.removeprefix("$ "))[1:], shown))
    return found


def test_the_estimates_shown_are_what_estimate_prints(tmp_path: Path) -> None:
    blocks = _console_blocks()
    assert [words[:1] for words, _shown in blocks] == [["estimate"], ["estimate"]]
    assert "--source" in blocks[0][0]
    assert blocks[0][0][blocks[0][0].index("--source") + 1] in {"bluesky", "x-api"}
    command = Path(sys.executable).parent / "friendscrape"
    for words, shown in blocks:
        done = subprocess.run(
            [str(command), *words],
            cwd=tmp_path,
            env=environ_without_configuration(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        printed = done.stdout.rstrip("\n").split("\n")
        if shown[0] == "...":  # an excerpt: these lines, together, as printed
            assert "\n".join(shown[1:]) in done.stdout, done.stdout
        else:
            assert printed == shown, done.stdout


def test_the_arithmetic_adds_up() -> None:
    users, partitions, per_day, requests_per_user = 3_600_000, 10, 90_000, 6
    per_partition = users // partitions
    days = per_partition / per_day
    assert f"{per_partition:,} users / {per_day:,} users a day = {days:.0f} days" in PAGE
    assert f"({days * 24:.0f} hours)" in PAGE
    assert f"{per_day:,} users x {requests_per_user} requests = {per_day * 6:,} a day" in PAGE
    assert f"{per_day * requests_per_user / 86_400:.2f} a second" in PAGE
    # Bluesky: 3,000 requests per 5 minutes per address.
    assert f"allow {3_000 * 288 // requests_per_user:,}" in PAGE


def _table(text: str, heading: str) -> list[list[str]]:
    start = text.index(heading)
    rows = []
    for line in text[start:].split("\n"):
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def test_every_exit_status_of_operations_is_in_the_deploying_table() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    codes = [row[0] for row in _table(operations, "## Exit codes")]
    assert codes == ["0", "1", "2", "3", "4", "5", "6", "128 + N"]
    rows = _table(PAGE, "## Exit statuses, and what each platform does with them")
    assert [row[0] for row in rows] == codes
    for row in rows:
        assert len(row) == 5, row  # the code, its meaning, Heroku, Kubernetes, Cloud Run
        assert all(row), row


def test_the_failure_policy_shown_is_the_manifests() -> None:
    snippets = re.findall(r"^  ```yaml\n(.*?)^  ```", PAGE, re.MULTILINE | re.DOTALL)
    (shown,) = [yaml.safe_load(textwrap.dedent(s)) for s in snippets]
    job = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "job.yaml").read_text("utf-8"))
    assert shown == {"podFailurePolicy": job["spec"]["podFailurePolicy"]}


def test_the_log_searches_name_the_events_that_need_a_person() -> None:
    searches = {row[0] for row in _table(PAGE, "| Search | Means | Do |")}
    for event in ("watchdog.stalled", "writer.failed", "run.aborted", "breaker.tripped"):
        assert f"`{event}`" in searches
    assert "`limiter.pause_too_long`" in searches
