"""Every snippet of docs/graphs.md, and the export recipes of docs/getting-started.md, run
as written on a Bluesky job collected from the simulator (shell lines as commands, Python
as a script, SQL against the local BigQuery server)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from friendscrape.commands import demo
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.stores.base import Store
from friendscrape.stores.bigquery import BigQueryStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    settings = Settings(store=f"sqlite:///{folder / 'friendscrape.db'}")
    # A Bluesky job, as the page says: the platform its recipes lead with.
    result = asyncio.run(
        demo.run_demo(
            settings, users=60, partitions=2, latency=0.0, concurrency=8, source="bluesky"
        )
    )
    assert result.exit_code == 0, demo.render(result)
    return folder


def run(kind: str, code: str, folder: Path) -> None:
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
    elif kind == "python":
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (code, done.stderr)
    else:
        raise AssertionError(f"no runner for {kind} snippets")


def test_every_snippet_of_the_graph_page_runs(job: Path) -> None:
    ran = 0
    for kind, code in snippets((DOCS / "graphs.md").read_text()):
        if kind == "sql":
            continue  # BigQuery: the test below
        run(kind, code, job)
        ran += 1
    assert ran >= 7


def test_the_export_recipes_of_getting_started_run(job: Path) -> None:
    text = section((DOCS / "getting-started.md").read_text(), "Export the graph")
    found = snippets(text)
    assert [kind for kind, _code in found] == ["sh", "python"]
    for kind, code in found:
        run(kind, code, job)


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
