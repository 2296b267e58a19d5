"""Graph exports of a real simulator job load in networkx, pandas and duckdb, and equal
the simulator's truth: same nodes, same edges, the job's ids on both ends."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import duckdb
import networkx as nx
import pandas as pd
import pytest

from friendscrape.commands import demo, export
from friendscrape.commands.demo_options import DEMO_MEAN_FRIENDS
from friendscrape.commands.export import GraphExport, export_graph
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.errors import UsageError
from friendscrape.models import Status
from friendscrape.simulator.formats import api_truth, import_user
from friendscrape.simulator.graph import SyntheticGraph
from friendscrape.stores import opened_store
from storefixtures import bq_settings

USERS = 60

Edge = tuple[str, str]


def _truth(source: str) -> tuple[set[str], set[Edge], set[Edge]]:
    """Job ids, every edge (target keyed as a graph file keys it), edges within the job."""
    graph = SyntheticGraph(USERS, mean_friends=DEMO_MEAN_FRIENDS)
    ids: set[str] = set()
    edges: set[Edge] = set()
    within: set[Edge] = set()
    for account in graph.accounts():
        user = import_user(source, graph, account)
        ids.add(user.user_id)
        if source == "twitter-mobile":
            expected = graph.expected(account.screen_name)
            if expected["status"] != Status.OK.value:
                continue
            names = list(expected["friends"])
            upstream = [f"name:{name}" for name in names]
        else:
            status, names, upstream = api_truth(source, graph, account)
            if status is not Status.OK:
                continue
        plain = graph.listing(account, 0, len(names))
        for name, up in zip(plain, upstream, strict=True):
            index = graph.listed_index(name)
            if index < graph.users:
                edges.add((user.user_id, graph.id_of(index)))
                within.add((user.user_id, graph.id_of(index)))
            else:
                edges.add((user.user_id, up))
    return ids, edges, within


@pytest.fixture(scope="module", params=["twitter-mobile", "x-api", "bluesky", "mastodon"])
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    source: str = request.param
    folder = tmp_path_factory.mktemp(source)
    settings = Settings(store=f"sqlite:///{folder / 'job.db'}", source=source)
    result = asyncio.run(
        demo.run_demo(
            settings, users=USERS, partitions=2, latency=0.0, concurrency=8, source=source
        )
    )
    assert result.exit_code == 0, demo.render(result)
    return settings


@pytest.fixture(scope="module", params=["twitter-mobile", "x-api", "bluesky", "mastodon"])
def bq_job(request: pytest.FixtureRequest) -> Settings:
    """The same simulator job as ``job``, collected into a BigQuery store."""
    source: str = request.param
    emulator = request.getfixturevalue("bq_emulator")
    base = bq_settings(emulator.endpoint, f"t_{uuid.uuid4().hex[:12]}")
    settings = Settings(**{**base.model_dump(), "source": source})
    result = asyncio.run(
        demo.run_demo(
            settings, users=USERS, partitions=2, latency=0.0, concurrency=8, source=source
        )
    )
    assert result.exit_code == 0, demo.render(result)
    return settings


async def _export(settings: Settings, spec: GraphExport, path: Path) -> None:
    async with opened_store(store_config(settings), read_only=True) as store:
        await export_graph(store, spec, path)


async def test_every_format_loads_as_the_simulators_graph(job: Settings, tmp_path: Path) -> None:
    ids, edges, _within = _truth(job.source)
    for fmt, table, name in [
        ("edges", "csv", "edges.csv"),
        ("edges", "parquet", "edges.parquet"),
        ("edges", "jsonl", "edges.jsonl"),
        ("nodes", "parquet", "nodes.parquet"),
        ("graphml", "csv", "graph.graphml"),
        ("gexf", "csv", "graph.gexf"),
    ]:
        await _export(job, GraphExport(fmt, table), tmp_path / name)

    for reader, name_attr in ((nx.read_graphml, "name"), (nx.read_gexf, "label")):
        g = reader(tmp_path / ("graph.graphml" if reader is nx.read_graphml else "graph.gexf"))
        assert set(g.edges()) == edges
        assert set(g.nodes()) == ids | {t for _s, t in edges}
        # Every node is a node element with attributes: the job's users in_job with their
        # status, each friend outside the job with its name and in_job false.
        assert {n for n, d in g.nodes(data=True) if d["in_job"]} == ids
        assert all(d[name_attr] for _n, d in g.nodes(data=True))
        assert all("status" in d for _n, d in g.nodes(data=True) if d["in_job"])
        outside = [(n, d) for n, d in g.nodes(data=True) if not d["in_job"]]
        assert outside
        assert all(set(d) == {name_attr, "in_job"} for _n, d in outside)
        if job.source == "twitter-mobile":
            assert all(n == f"name:{d[name_attr]}" for n, d in outside)

    # Every edge has both ends: a friend with no id is keyed name:NAME, as in the graphs.
    table = pd.read_csv(tmp_path / "edges.csv", dtype=str, keep_default_na=False)
    assert (table.target_id != "").all()
    g = nx.from_pandas_edgelist(table, "source_id", "target_id", create_using=nx.DiGraph)
    assert set(g.edges()) == edges

    parquet = pd.read_parquet(tmp_path / "edges.parquet")
    assert len(parquet) == len(table) == len(edges)
    assert set(parquet.source_id) <= ids
    # fetchall: duckdb 2 relations have no fetchone.
    count = duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'edges.parquet'}'").fetchall()
    assert count == [(len(edges),)]
    jsonl = pd.read_json(tmp_path / "edges.jsonl", lines=True, dtype=False)
    assert len(jsonl) == len(edges)

    nodes = pd.read_parquet(tmp_path / "nodes.parquet")
    assert set(nodes.id) == ids
    assert len(nodes) == len(ids)
    ok = nodes[nodes.status == "ok"]
    assert ok.complete.all()
    assert not nodes[nodes.status != "ok"].complete.any()


async def test_within_keeps_exactly_the_edges_between_job_users(
    job: Settings, tmp_path: Path
) -> None:
    _ids, _edges, within = _truth(job.source)
    await _export(job, GraphExport("edges", "parquet", within=True), tmp_path / "w.parquet")
    table = pd.read_parquet(tmp_path / "w.parquet")
    assert set(zip(table.source_id, table.target_id, strict=True)) == within
    assert len(table) == len(within)


async def test_partition_exports_one_partition(job: Settings, tmp_path: Path) -> None:
    await _export(job, GraphExport("nodes", "csv", partition=1), tmp_path / "p1.csv")
    await _export(job, GraphExport("nodes", "csv", partition=2), tmp_path / "p2.csv")
    one = pd.read_csv(tmp_path / "p1.csv", dtype=str)
    two = pd.read_csv(tmp_path / "p2.csv", dtype=str)
    assert set(one.partition) == {"1"}
    assert set(two.partition) == {"2"}
    assert len(one) + len(two) == USERS


async def test_graph_files_over_the_desktop_size_are_refused_before_writing(
    job: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "DESKTOP_EDGES", 10)
    out = tmp_path / "big.graphml"
    with pytest.raises(UsageError, match=r"the graph has 60 users and [0-9,]+ edges.*--force"):
        await _export(job, GraphExport("graphml"), out)
    assert not out.exists()
    await _export(job, GraphExport("graphml", force=True), out)
    assert out.exists()


@pytest.mark.bigquery
async def test_bigquery_edges_equal_the_simulators_graph(bq_job: Settings, tmp_path: Path) -> None:
    _ids, edges, within = _truth(bq_job.source)
    await _export(bq_job, GraphExport("edges", "csv"), tmp_path / "edges.csv")
    await _export(bq_job, GraphExport("edges", "csv", within=True), tmp_path / "within.csv")
    table = pd.read_csv(tmp_path / "edges.csv", dtype=str, keep_default_na=False)
    keyed = {
        (s, t or f"name:{n}")
        for s, t, n in zip(table.source_id, table.target_id, table.target_name, strict=True)
    }
    assert keyed == edges
    assert len(table) == len(edges)
    inside = pd.read_csv(tmp_path / "within.csv", dtype=str, keep_default_na=False)
    assert set(zip(inside.source_id, inside.target_id, strict=True)) == within
