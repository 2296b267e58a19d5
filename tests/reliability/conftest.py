"""Simulator subprocesses shared by the reliability tests, one per kind of upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import SimProcess, graph_config, seed_store, start_simulator


def _serve(**faults: object) -> Iterator[SimProcess]:
    sim = start_simulator(graph_config(**faults))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def clean_sim() -> Iterator[SimProcess]:
    """The suite's graph with no faults."""
    yield from _serve(latency=0.01)


@pytest.fixture(scope="session")
def faulty_sim() -> Iterator[SimProcess]:
    """10 % HTTP 500, 5 % 429 with Retry-After 1, 2 % dropped, 1 % hung."""
    yield from _serve(
        latency=0.005,
        error_rate=0.10,
        rate_limit_rate=0.05,
        retry_after=1,
        drop_rate=0.02,
        hang_rate=0.01,
    )


@pytest.fixture(scope="session")
def sticky_sim() -> Iterator[SimProcess]:
    """A quarter of the pages never answer: users stay in flight as long as asked."""
    yield from _serve(latency=0.01, hang_rate=0.25)


@pytest.fixture(scope="session")
def graph() -> SyntheticGraph:
    """The truth every simulator above serves."""
    return graph_config().make_graph()


@pytest.fixture
async def db(tmp_path: Path, graph: SyntheticGraph) -> Path:
    """A fresh store with the graph's users in 3 partitions of 200."""
    path = tmp_path / "store.db"
    await seed_store(path, graph, 3)
    return path
