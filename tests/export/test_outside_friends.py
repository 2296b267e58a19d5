"""Friends outside the job in the exports, on both stores, each export its own process:
GraphML and GEXF give every friend a node with attributes (its key, its name, in_job
false), names-only lists (twitter-mobile) included; the edge table never leaves an id
empty, so a naive ``pd.read_csv`` keeps 18-digit ids exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.models import User
from friendscrape.stores.base import Store
from storefixtures import ok_result

# 18 digits, as X and Twitter ids are: a float keeps 15 to 17 of them (ADA would read
# back as ...680), so a column read as floats loses them.
ADA = "123456789012345678"
BOB = "234567890123456789"
CY = "345678901234567891"
FAR = "987654321098765432"

Edge = tuple[str, str]


async def _names_only_job(store: Store) -> set[Edge]:
    """A twitter-mobile job: lists of names; two friends are not users of the job."""
    await store.import_users([User(ADA, "ada", 3), User(BOB, "bob", 2), User(CY, "cy", 1)])
    await store.plan_partitions(1)
    await store.save(
        [
            ok_result(ADA, ("BOB", "stranger", "other"), screen_name="ada"),
            ok_result(BOB, ("ada", "stranger"), screen_name="bob"),
        ]
    )
    return {
        (ADA, BOB),
        (ADA, "name:stranger"),
        (ADA, "name:other"),
        (BOB, ADA),
        (BOB, "name:stranger"),
    }


async def _ids_job(store: Store) -> set[Edge]:
    """An x-api job: lists carry ids; FAR is not a user of the job."""
    await store.import_users([User(ADA, "ada", 2), User(BOB, "bob", 1), User(CY, "cy", 1)])
    await store.plan_partitions(1)
    await store.save(
        [
            ok_result(ADA, ("bob", "far"), ids=(BOB, FAR), source="x-api", screen_name="ada"),
            ok_result(BOB, ("ada",), ids=(ADA,), source="x-api", screen_name="bob"),
        ]
    )
    return {(ADA, BOB), (ADA, FAR), (BOB, ADA)}


JOBS = {"twitter-mobile": _names_only_job, "x-api": _ids_job}
OUTSIDE_NAMES = {
    "twitter-mobile": {"name:stranger": "stranger", "name:other": "other"},
    "x-api": {FAR: "far"},
}


def _export(
    store_settings: Settings, folder: Path, request: pytest.FixtureRequest, *args: str
) -> None:
    env = environ_without_configuration(os.environ)
    if store_settings.store.startswith("bigquery://"):
        emulator = request.getfixturevalue("bq_emulator")
        env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = emulator.endpoint
        env["FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT"] = emulator.grpc_endpoint
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "friendscrape.cli",
            "export",
            "--store",
            store_settings.store,
            *args,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("platform", ["twitter-mobile", "x-api"])
async def test_every_node_of_a_graph_file_has_attributes(
    store: Store,
    store_settings: Settings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    platform: str,
) -> None:
    edges = await JOBS[platform](store)
    _export(store_settings, tmp_path, request, "--format", "graphml", "--output", "g.graphml")
    _export(store_settings, tmp_path, request, "--format", "gexf", "--output", "g.gexf")
    outside = OUTSIDE_NAMES[platform]
    for path, name, read in (
        ("g.graphml", "name", nx.read_graphml),
        ("g.gexf", "label", nx.read_gexf),
    ):
        graph = read(tmp_path / path)
        assert set(graph.edges()) == edges, path
        nodes = dict(graph.nodes(data=True))
        assert set(nodes) == {ADA, BOB, CY, *outside}, path
        for key in (ADA, BOB, CY):
            assert nodes[key]["in_job"] is True, path
            assert "status" in nodes[key], path
        assert nodes[CY]["status"] == "pending"
        assert {k: d for k, d in nodes.items() if not d["in_job"]} == {
            key: {name: friend, "in_job": False} for key, friend in outside.items()
        }, path


@pytest.mark.parametrize("platform", ["twitter-mobile", "x-api"])
async def test_a_naive_pandas_load_of_the_edges_keeps_every_id(
    store: Store,
    store_settings: Settings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    platform: str,
) -> None:
    edges = await JOBS[platform](store)
    _export(store_settings, tmp_path, request, "--format", "edges", "--output", "edges.csv")
    _export(store_settings, tmp_path, request, "--format", "nodes", "--output", "nodes.csv")
    table = pd.read_csv(tmp_path / "edges.csv")  # no dtype: what a first try does
    for column in ("source_id", "target_id"):
        assert not pd.api.types.is_float_dtype(table[column]), column
        assert table[column].notna().all(), column
    # Numbers exactly (an int64 holds 18 digits), or the text as written.
    ends = zip(table.source_id, table.target_id, strict=True)
    assert {(str(s), str(t)) for s, t in ends} == edges
    assert len(table) == len(edges)
    nodes = pd.read_csv(tmp_path / "nodes.csv")
    assert sorted(str(v) for v in nodes.id) == sorted([ADA, BOB, CY])
