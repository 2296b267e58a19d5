"""A bad BigQuery store URL is refused in one line that says what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.conftest import cli
from friendscrape.checks import DATASET_RULE, PROJECT_RULE, bigquery_store

BAD = [
    ("bigquery://x/y", "project id 'x' is 1 character long", PROJECT_RULE),
    ("bigquery://My-Project/ds", "project id 'My-Project' has 'M', 'P'", PROJECT_RULE),
    ("bigquery://1project/ds", "project id '1project' starts with '1'", PROJECT_RULE),
    ("bigquery://project-/ds", "project id 'project-' ends with a hyphen", PROJECT_RULE),
    ("bigquery://my-project/ds.users", "dataset name 'ds.users' has '.'", DATASET_RULE),
    ("bigquery://my-project/", "no dataset name", DATASET_RULE),
    ("bigquery://my-project", "no dataset", "use bigquery://PROJECT/DATASET"),
]


@pytest.mark.parametrize(("url", "fault", "rule"), BAD)
def test_a_bad_bigquery_url_says_what_is_wrong(
    tmp_path: Path, url: str, fault: str, rule: str
) -> None:
    done = cli("status", "--store", url, cwd=tmp_path)
    assert done.code == 2
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith(f"friendscrape: error: argument --store: {url}: {fault}; {rule}")


@pytest.mark.parametrize(("url", "fault", "rule"), BAD[:2])
def test_the_environment_gets_the_same_message(
    tmp_path: Path, url: str, fault: str, rule: str
) -> None:
    done = cli("status", cwd=tmp_path, env={"FRIENDSCRAPE_STORE": url})
    assert done.code == 2
    assert done.err == f"friendscrape: error: {url}: {fault}; {rule}\n"


def test_the_message_states_the_rules_plainly() -> None:
    assert PROJECT_RULE.startswith("a project id is 6 to 30 characters")
    assert DATASET_RULE == "a dataset name is letters, digits and underscores, at most 1024"


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("bigquery://my-project-1/friend_graph", ("my-project-1", "friend_graph")),
        ("bigquery://example.com:proj-42/ds", ("example.com:proj-42", "ds")),
        (f"bigquery://abcdef/{'d' * 1024}", ("abcdef", "d" * 1024)),
    ],
)
def test_good_urls_pass(url: str, parts: tuple[str, str]) -> None:
    assert bigquery_store(url) == parts
