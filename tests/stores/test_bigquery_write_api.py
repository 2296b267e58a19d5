"""Results through the Storage Write API and through streaming inserts, on the local
BigQuery server: the same rows read back either way, and a refused Storage Write API
falls back to streaming inserts without losing a row."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from structlog.testing import capture_logs

from bqemu import Emulator
from friendscrape.configparts import store_config
from friendscrape.models import FriendList, Status
from friendscrape.stores import opened_store
from storefixtures import bq_settings

pytestmark = pytest.mark.bigquery

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

RESULTS = [
    FriendList(
        "1",
        "one",
        Status.OK,
        "twitter-mobile",
        1,
        T0,
        T0 + timedelta(seconds=2, microseconds=7),
        friend_names=("a", "b", "é"),
        friend_ids=("10", "11", "12"),
        following_count=3,
    ),
    FriendList(
        "2",
        "two",
        Status.FAILED,
        "twitter-mobile",
        2,
        T0,
        T0 + timedelta(seconds=9),
        error="HTTP 500 on page 2",
        truncated=True,
        attempts=3,
    ),
]


async def _saved(settings: Any) -> tuple[list[FriendList], list[str]]:
    with capture_logs() as logs:
        async with opened_store(store_config(settings), create=True) as store:
            await store.save(RESULTS)
            got = [r async for r in store.results()]
    return got, [str(e["event"]) for e in logs]


async def test_both_write_paths_read_back_the_same_rows(bq_emulator: Emulator) -> None:
    storage = bq_settings(
        bq_emulator.endpoint,
        f"w_{uuid.uuid4().hex[:12]}",
        bigquery_grpc_endpoint=bq_emulator.grpc_endpoint,
    )
    insert_all = bq_settings(
        bq_emulator.endpoint, f"w_{uuid.uuid4().hex[:12]}", bigquery_write_api="insert_all"
    )
    by_storage, storage_events = await _saved(storage)
    by_insert_all, insert_events = await _saved(insert_all)
    assert "store.append" in storage_events
    assert "store.insert" not in storage_events
    assert "store.insert" in insert_events
    assert "store.append" not in insert_events
    assert by_storage == by_insert_all == RESULTS


@pytest.fixture
def refusing_grpc() -> Iterator[str]:
    """A real gRPC server with no services: every call is answered UNIMPLEMENTED, as
    from a server that does not serve the Storage Write API."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


async def test_a_refused_storage_write_api_falls_back_to_streaming_inserts(
    bq_emulator: Emulator, refusing_grpc: str
) -> None:
    settings = bq_settings(
        bq_emulator.endpoint, f"w_{uuid.uuid4().hex[:12]}", bigquery_grpc_endpoint=refusing_grpc
    )
    got, events = await _saved(settings)
    assert events.count("store.write_api_fallback") == 1
    assert "store.insert" in events
    assert got == RESULTS
