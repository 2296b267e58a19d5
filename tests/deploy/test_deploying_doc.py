"""docs/deploying.md agrees with the code and the deploy files it describes."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_the_arithmetic_adds_up() -> None:
    users, partitions, seconds_per_user, concurrency = 3_600_000, 10, 40, 50
    per_partition = users // partitions
    hours = per_partition * seconds_per_user / concurrency / 3600
    assert f"{per_partition:,}" in PAGE
    assert f"{per_partition * seconds_per_user // concurrency:,} s = {hours:.0f} hours" in PAGE
    assert f"{users * seconds_per_user:,} user-seconds" in PAGE
