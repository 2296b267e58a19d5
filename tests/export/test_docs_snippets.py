"""Every snippet of docs/graphs.md, and the export recipes of docs/getting-started.md, run
as written on a Bluesky job and on a names-only (twitter-mobile) job collected from the
simulator (shell lines as commands, Python as a script, SQL against the local BigQuery
server), and print the job's true counts. The suite runs them with the pinned duckdb and
pandas; ``--recipe-python`` runs the Python recipes with another interpreter (one with
the newest duckdb and pandas, say)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.commands import demo
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.configparts import store_config
from friendscrape.stores import opened_store
from friendscrape.stores.base import Store
from friendscrape.stores.bigquery import BigQueryStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
USERS = 60
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@dataclass(frozen=True)
class Job:
    """A folder holding a collected job's ``friendscrape.db``, and its true counts."""

    folder: Path
    users: int
    follows: int
    complete: int


@pytest.fixture(scope="module", params=["bluesky", "twitter-mobile"])
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Job:
    # A Bluesky job, as the pages say: the platform its recipes lead with; and a
    # twitter-mobile one, whose lists carry names only.
    source: str = request.param
    folder = tmp_path_factory.mktemp(source)
    settings = Settings(store=f"sqlite:///{folder / 'friendscrape.db'}")
    result = asyncio.run(
        demo.run_demo(settings, users=60, partitions=2, latency=0.0, concurrency=8, source=source)
    )
    assert result.exit_code == 0, demo.render(result)
    return asyncio.run(_counted(settings, folder))


async def _counted(settings: Settings, folder: Path) -> Job:
    """The job's counts as the store holds them: every name of every list a follow."""
    async with opened_store(store_config(settings), read_only=True) as store:
        follows = sum([len(r.friend_names) async for r in store.results()])
        nodes = [n async for n in store.nodes()]
    assert len(nodes) == USERS
    return Job(folder, len(nodes), follows, sum(n.complete for n in nodes))


@pytest.fixture(scope="module")
def python(request: pytest.FixtureRequest) -> str:
    """The interpreter the Python recipes run with: this one unless --recipe-python."""
    chosen: str | None = request.config.getoption("--recipe-python")
    return chosen or sys.executable


def run(kind: str, code: str, folder: Path, python: str = sys.executable) -> str:
    """Run one snippet in ``folder``; returns what it printed."""
    env = environ_without_configuration(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if kind == "sh":
        for line in code.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            done = subprocess.run(
                ["sh", "-c", line],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (line, done.stderr)
        return ""
    if kind == "python":
        done = subprocess.run(
            [python, "-c", code],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (code, done.stderr)
        return done.stdout
    raise AssertionError(f"no runner for {kind} snippets")


def test_every_snippet_of_the_graph_page_runs(job: Job, python: str) -> None:
    printed = []
    for kind, code in snippets((DOCS / "graphs.md").read_text()):
        if kind == "sql":
            continue  # BigQuery: the test below
        printed.append(run(kind, code, job.folder, python))
    assert len(printed) >= 7
    said = "".join(printed)
    # Each Python recipe counts every follow and the job's users, names-only lists
    # included (no edge dropped for want of an id).
    assert f"{job.follows:,} follows by " in said
    assert f"of the job's {job.users:,} users" in said
    assert f"{job.users:,} users of the job, " in said
    assert f"{job.follows:,} follows, " in said
    assert said.count(f"{job.follows:,} follows of ") == 2  # pandas and duckdb
    assert f"{job.complete:,} of {job.users:,} users collected completely" in said


def test_the_export_recipes_of_getting_started_run(job: Job, python: str) -> None:
    text = section((DOCS / "getting-started.md").read_text(), "Export the graph")
    found = snippets(text)
    assert [kind for kind, _code in found] == ["sh", "python"]
    said = "".join(run(kind, code, job.folder, python) for kind, code in found)
    assert f"{job.complete:,} of {job.users:,} users collected completely" in said
    assert f"{job.follows:,} follows, to " in said


def test_one_file_name_one_meaning_in_the_docs() -> None:
    """edges.csv is the edge table (--format edges), friends.csv the names per user
    (--format csv), in README and every page."""
    pages = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
    lines = [line for page in pages for line in page.read_text().splitlines()]
    exports = [line for line in lines if "export --format" in line]
    assert any("friends.csv" in line for line in exports)
    assert any("edges.csv" in line for line in exports)
    for line in exports:
        if "edges.csv" in line:
            assert "--format edges" in line, line
        if "friends.csv" in line:
            assert "--format csv" in line, line


@pytest.mark.bigquery
@pytest.mark.parametrize("store_settings", ["bigquery"], indirect=True)
async def test_the_bigquery_queries_run_on_the_views(
    store: Store, store_settings: Settings
) -> None:
    from export.test_store_graph import _job  # noqa: PLC0415

    await _job(store)
    assert isinstance(store, BigQueryStore)
    dataset = store_settings.store.removeprefix("bigquery://").replace("/", ".")
    queries = [code for kind, code in snippets((DOCS / "graphs.md").read_text()) if kind == "sql"]
    assert len(queries) == 2
    answers = [
        list(store.client.query(q.replace("PROJECT.DATASET", dataset)).result()) for q in queries
    ]
    assert {(r["target_id"], r["followers"]) for r in answers[0]} == {
        ("200", 1),
        ("10", 1),
        ("3000", 1),
    }
    assert sum(r["users"] for r in answers[1]) == 4
