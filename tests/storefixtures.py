"""Store fixtures shared by every test folder: a real SQLite file and the local BigQuery server
(one emulator per session), each giving a fresh, empty store."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bqemu import Emulator, EmulatorError, running_emulator
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.models import FriendList, Status
from friendscrape.stores import open_store
from friendscrape.stores.base import Store

PROJECT = "test-project"


def _skip_bigquery() -> bool:
    return os.environ.get("FRIENDSCRAPE_SKIP_BIGQUERY") == "1"


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the session. It must start: CI fails rather than skips, unless
    FRIENDSCRAPE_SKIP_BIGQUERY=1 says so explicitly."""
    if _skip_bigquery():
        pytest.skip("FRIENDSCRAPE_SKIP_BIGQUERY=1: BigQuery store tests skipped on request")
    log = tmp_path_factory.mktemp("bqemu") / "bqemulator.log"
    try:
        with running_emulator(log) as emulator:
            yield emulator
    except EmulatorError as exc:
        pytest.fail(f"the local BigQuery server could not start: {exc}", pytrace=False)


def bq_settings(endpoint: str, dataset: str, **overrides: Any) -> Settings:
    """Settings for a store on the emulator with short retry budgets."""
    values: dict[str, Any] = {
        "store": f"bigquery://{PROJECT}/{dataset}",
        "bigquery_endpoint": endpoint,
        "store_attempts": 3,
        "store_retry_deadline": 20.0,
        "write_timeout": 20.0,
        "retry_base_wait": 0.05,
        "retry_max_wait": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def bq_dataset(bq_emulator: Emulator) -> Iterator[str]:
    """A fresh dataset name, dropped afterwards to keep the emulator's memory small."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    from google.api_core.client_options import ClientOptions  # noqa: PLC0415
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import bigquery  # noqa: PLC0415

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=bq_emulator.endpoint),
    )
    try:
        client.delete_dataset(
            f"{PROJECT}.{name}", delete_contents=True, not_found_ok=True, retry=None, timeout=20
        )
    finally:
        client.close()


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings naming a fresh, empty store of each kind."""
    if request.param == "sqlite":
        return Settings(store=f"sqlite:///{tmp_path / 'friendscrape.db'}")
    emulator: Emulator = request.getfixturevalue("bq_emulator")
    dataset: str = request.getfixturevalue("bq_dataset")
    # Results through the Storage Write API, as users' runs write them by default.
    return bq_settings(emulator.endpoint, dataset, bigquery_grpc_endpoint=emulator.grpc_endpoint)


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[Store]:
    """An opened store of each kind; closed afterwards."""
    opened = open_store(store_config(store_settings), create=True)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


RESULT_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ok_result(
    user_id: str,
    names: tuple[str, ...],
    *,
    ids: tuple[str, ...] = (),
    source: str = "twitter-mobile",
    screen_name: str = "",
    following_count: int | None = None,
    attempts: int = 1,
) -> FriendList:
    """An ok result as a run saves it: by default of the twitter-mobile kind (friend
    names, no upstream ids)."""
    return FriendList(
        user_id=user_id,
        screen_name=screen_name,
        status=Status.OK,
        source=source,
        partition=1,
        start_at=RESULT_AT,
        end_at=RESULT_AT,
        friend_names=names,
        friend_ids=ids,
        following_count=following_count,
        truncated=False,
        attempts=attempts,
    )
