"""`friendscrape export` the way users run it: a new process per command. Memory stays flat
however large the store (the exports stream), and bad requests are one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from export.test_store_graph import _job
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.stores.base import Store
from synthetic import build

FORMATS = [
    ["--format", "jsonl"],
    ["--format", "edges", "--as", "parquet"],
    ["--format", "edges", "--as", "csv"],
    ["--format", "nodes", "--as", "parquet"],
    ["--format", "graphml", "--force"],
]


def _command(store: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "friendscrape.cli",
        "export",
        "--store",
        f"sqlite:///{store}",
        *args,
    ]


def _peak_mb(store: Path, args: list[str], out: Path) -> float:
    """Run one export; its peak RSS as the kernel counted it when it exited (wait4)."""
    env = environ_without_configuration(os.environ)
    proc = subprocess.Popen(
        _command(store, *args, "--output", str(out)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert proc.stderr is not None
    error = proc.stderr.read().decode()
    proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, error
    return usage.ru_maxrss / 1024


@pytest.mark.parametrize("args", FORMATS, ids=" ".join)
def test_memory_stays_flat_as_the_store_grows(tmp_path: Path, args: list[str]) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    build(small, users=500, friends=200)
    build(large, users=20_000, friends=200)  # 4,000,000 edges: ~400 MB as Python objects
    small_mb = _peak_mb(small, args, tmp_path / "small.out")
    large_mb = _peak_mb(large, args, tmp_path / "large.out")
    assert (tmp_path / "large.out").stat().st_size > 20 * (tmp_path / "small.out").stat().st_size
    assert large_mb - small_mb < 40, (small_mb, large_mb)


def _cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(tmp_path / "job.db", *args),
        env=env or environ_without_configuration(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_within_from_the_command_line(tmp_path: Path) -> None:
    build(tmp_path / "job.db", users=300, friends=40)
    done = _cli(tmp_path, "--format", "edges", "--within", "--output", "within.parquet")
    assert done.returncode == 0, done.stderr
    assert "exported edges of 300 users" in done.stderr
    table = pd.read_parquet(tmp_path / "within.parquet")
    assert table.target_id.notna().all()
    assert (table.target_name.str.lower().str.startswith("user")).all()
    every = _cli(tmp_path, "--format", "edges", "--output", "all.csv")
    assert every.returncode == 0, every.stderr
    edges = pd.read_csv(tmp_path / "all.csv", dtype=str, keep_default_na=False)
    assert len(edges) == 300 * 40
    # Friends with no id (names only) are keyed name:NAME; the rest are users of the job.
    assert len(table) == (~edges.target_id.str.startswith("name:")).sum()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "jsonl", "--within"], "--within apply to --format edges"),
        (["--format", "edges", "--as", "parquet"], "give --output FILE.parquet"),
        (["--format", "graphml", "--partition", "0"], "--partition"),
    ],
)
def test_bad_requests_are_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    build(tmp_path / "job.db", users=10, friends=5)
    done = _cli(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert says in lines[0]
    assert "Traceback" not in done.stderr


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    build(tmp_path / "job.db", users=10, friends=5)
    blocker = tmp_path / "blocker" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    env = environ_without_configuration(os.environ)
    env["PYTHONPATH"] = str(blocker.parent)
    done = _cli(tmp_path, "--format", "edges", "--output", "e.parquet", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "friendscrape: error: Parquet needs pyarrow: pip install 'friendscrape[parquet]'"
    ]
    assert not (tmp_path / "e.parquet").exists()


def exports(
    store_settings: Settings, request: pytest.FixtureRequest, cwd: Path, *runs: list[str]
) -> None:
    """Run each ``friendscrape export ARGS`` of ``runs`` in a new process on the store
    (the local BigQuery-compatible server's when it is BigQuery); each must exit 0."""
    env = environ_without_configuration(os.environ)
    if store_settings.store.startswith("bigquery://"):
        emulator = request.getfixturevalue("bq_emulator")
        env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = emulator.endpoint
        env["FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT"] = emulator.grpc_endpoint
    command = [sys.executable, "-m", "friendscrape.cli", "export", "--store", store_settings.store]
    for args in runs:
        done = subprocess.run(
            [*command, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr


async def test_graph_exports_from_a_new_process_on_each_store(
    store: Store, store_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await _job(store)
    exports(
        store_settings,
        request,
        tmp_path,
        ["--format", "edges", "--output", "edges.parquet"],
        ["--format", "edges", "--within", "--output", "within.csv"],
        ["--format", "nodes", "--output", "nodes.jsonl"],
        ["--format", "graphml", "--output", "graph.graphml"],
    )
    edges = pd.read_parquet(tmp_path / "edges.parquet")
    assert list(zip(edges.source_id, edges.target_id, strict=True)) == [
        ("10", "200"),
        ("10", "name:outsider"),
        ("10", "3000"),
        ("200", "10"),
        ("200", "999"),
        ("3000", "5@mast.example"),
        ("3000", "6@mast.example"),
    ]
    within = pd.read_csv(tmp_path / "within.csv", dtype=str)
    assert set(zip(within.source_id, within.target_id, strict=True)) == {
        ("10", "200"),
        ("10", "3000"),
        ("200", "10"),
    }
    nodes = pd.read_json(tmp_path / "nodes.jsonl", lines=True, dtype={"id": str})
    assert list(nodes.id) == ["10", "200", "3000", "40000"]
    assert list(nodes.complete) == [True, True, False, False]
    graph = nx.read_graphml(tmp_path / "graph.graphml")
    assert graph.nodes["40000"]["status"] == "pending"
    assert graph.number_of_edges() == 7
