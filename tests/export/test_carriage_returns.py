"""A value holding a carriage return comes back whole from every CSV export, read by
pandas and by Python's csv: the csv module quotes only its own line end (a line feed),
and readers take a bare carriage return for the end of a row."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from export.test_export_cli import exports
from export.test_store_graph import _result
from friendscrape.config import Settings
from friendscrape.models import User
from friendscrape.stores.base import Store

ODD = User("10", "odd\rname", 2)
PLAIN = User("20", "plain", 1)


async def test_carriage_returns_come_back_whole_from_csv_exports(
    store: Store, store_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await store.import_users([ODD, PLAIN])
    await store.plan_partitions(1)
    await store.save(
        [
            _result(ODD, ("a\rb", "plain"), ("1\r", "20")),
            _result(PLAIN, ("odd\rname",), ("10",)),
        ]
    )
    exports(
        store_settings,
        request,
        tmp_path,
        ["--format", "csv", "--output", "lists.csv"],
        ["--format", "edges", "--output", "edges.csv"],
        ["--format", "nodes", "--output", "nodes.csv"],
    )

    lists = pd.read_csv(tmp_path / "lists.csv", dtype=str, keep_default_na=False)
    assert list(zip(lists.user_id, lists.screen_name, lists.friend_name, strict=True)) == [
        ("10", "odd\rname", "a\rb"),
        ("10", "odd\rname", "plain"),
        ("20", "plain", "odd\rname"),
    ]
    with (tmp_path / "edges.csv").open(newline="") as f:
        edges = [(r["source_id"], r["source_name"], r["target_name"]) for r in csv.DictReader(f)]
    assert edges == [
        ("10", "odd\rname", "a\rb"),
        ("10", "odd\rname", "plain"),
        ("20", "plain", "odd\rname"),
    ]
    nodes = pd.read_csv(tmp_path / "nodes.csv", dtype=str, keep_default_na=False)
    assert dict(zip(nodes.id, nodes.name, strict=True))["10"] == "odd\rname"
