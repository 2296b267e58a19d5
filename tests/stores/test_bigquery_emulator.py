"""BigQuery store on the local server: the tables as written, duplicates, old rows, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from structlog.testing import capture_logs

from bqemu import Emulator
from friendscrape.configparts import bigquery_config, store_config
from friendscrape.errors import StoreUnavailableError
from friendscrape.models import FriendList, Status
from friendscrape.stores import opened_store
from friendscrape.stores.bigquery import BigQueryStore
from storefixtures import PROJECT, bq_settings

pytestmark = pytest.mark.bigquery

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def result(user_id: str, names: int, *, start: datetime = T0, seconds: int = 7) -> FriendList:
    return FriendList(
        user_id=user_id,
        screen_name=f"name_{user_id}",
        status=Status.OK,
        source="twitter-mobile",
        partition=1,
        start_at=start,
        end_at=start + timedelta(seconds=seconds),
        friend_names=tuple(f"f{user_id}_{i}" for i in range(names)),
    )


@pytest.fixture
def client(bq_emulator: Emulator) -> Iterator[Any]:
    made = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=bq_emulator.endpoint),
    )
    yield made
    made.close()


@pytest.fixture
async def bq(bq_emulator: Emulator, bq_dataset: str) -> AsyncIterator[BigQueryStore]:
    store = BigQueryStore.from_url(
        f"bigquery://{PROJECT}/{bq_dataset}",
        bigquery_config(bq_settings(bq_emulator.endpoint, bq_dataset)),
    )
    await store.open()
    yield store
    await store.close()


def query(client: Any, sql: str) -> list[dict[str, Any]]:
    job = client.query(sql, retry=None, job_retry=None, timeout=20)
    return [dict(row.items()) for row in job.result(timeout=20, retry=None, job_retry=None)]


async def test_user_friends_keeps_the_original_columns_first(
    bq: BigQueryStore, client: Any, bq_dataset: str
) -> None:
    table = client.get_table(f"{PROJECT}.{bq_dataset}.user_friends", retry=None, timeout=20)
    # The API reports INT64 as INTEGER (the emulator echoes INT64): the same type.
    same = {"INTEGER": "INT64"}
    first = [(f.name, same.get(f.field_type, f.field_type), f.mode) for f in table.schema[:6]]
    assert first == [
        ("user_id", "STRING", "NULLABLE"),
        ("screen_name", "STRING", "NULLABLE"),
        ("friend_count", "INT64", "NULLABLE"),
        ("friend_names", "STRING", "REPEATED"),
        ("start_at", "TIMESTAMP", "NULLABLE"),
        ("end_at", "TIMESTAMP", "NULLABLE"),
    ]
    names = {f.name for f in table.schema}
    assert {"friend_ids", "truncated", "status", "partition", "attempts", "run_id"} <= names


async def test_original_monitoring_queries_work(
    bq: BigQueryStore, client: Any, bq_dataset: str
) -> None:
    await bq.save([result("1", 4, seconds=10), result("2", 2, seconds=20), result("3", 0)])
    table = f"{PROJECT}.{bq_dataset}.user_friends"

    (summary,) = query(
        client,
        f"SELECT count(distinct user_id) AS users, avg(friend_count) AS avg_friends,"
        f" min(start_at) AS first_start, max(end_at) AS last_end FROM `{table}`",
    )
    assert summary["users"] == 3
    assert summary["avg_friends"] == pytest.approx(2.0)
    assert summary["first_start"] == T0
    assert summary["last_end"] == T0 + timedelta(seconds=20)

    durations = query(
        client,
        f"SELECT user_id, DATETIME_DIFF(end_at, start_at, SECOND) AS secs FROM `{table}`"
        " ORDER BY user_id",
    )
    assert [d["secs"] for d in durations] == [10, 20, 7]

    (names,) = query(
        client,
        f"SELECT SUM(ARRAY_LENGTH(friend_names)) AS n FROM `{table}` WHERE friend_count > 0",
    )
    assert names["n"] == 6

    per_status = query(
        client,
        f"""SELECT `partition`, status, COUNT(*) AS users
            FROM (SELECT `partition`, status FROM `{table}` WHERE TRUE
                  QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY end_at DESC) = 1)
            GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    assert [(r["partition"], r["status"], r["users"]) for r in per_status] == [(1, "ok", 3)]

    (minute,) = query(
        client,
        f"SELECT TIMESTAMP_TRUNC(end_at, MINUTE) AS minute, COUNT(*) AS users,"
        f" SUM(ARRAY_LENGTH(friend_names)) AS names FROM `{table}` GROUP BY 1",
    )
    assert (minute["minute"], minute["users"], minute["names"]) == (T0, 3, 6)


async def test_reads_drop_duplicate_rows(bq: BigQueryStore, client: Any, bq_dataset: str) -> None:
    # The local server does no insertId de-duplication, like real BigQuery at its worst:
    # a retried save writes every row twice, and reads must still count each try once.
    rows = [result("1", 3), result("2", 1)]
    await bq.save(rows)
    await bq.save(rows)
    (raw,) = query(client, f"SELECT COUNT(*) AS n FROM `{PROJECT}.{bq_dataset}.user_friends`")
    assert raw["n"] == 4

    assert await bq.result_count() == 2
    got = [r async for r in bq.results()]
    assert [(r.user_id, r.attempts) for r in got] == [("1", 1), ("2", 1)]
    assert len(await bq.status_rows()) == 2


async def test_rows_of_the_original_deployment_are_read(
    bq: BigQueryStore, client: Any, bq_dataset: str
) -> None:
    old = {
        "user_id": "42",
        "screen_name": "old_timer",
        "friend_count": 2,
        "friend_names": ["a", "b"],
        "start_at": "2019-05-01T10:00:00+00:00",
        "end_at": "2019-05-01T10:00:05+00:00",
    }
    errors = client.insert_rows_json(
        f"{PROJECT}.{bq_dataset}.user_friends", [old], retry=None, timeout=20
    )
    assert errors == []
    (got,) = [r async for r in bq.results()]
    assert (got.user_id, got.status, got.friend_names, got.attempts) == (
        "42",
        Status.OK,
        ("a", "b"),
        1,
    )
    (status,) = await bq.status_rows()
    assert (status.friend_count, status.status) == (2, "ok")


def sent_queries(store: BigQueryStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every query the store's real client sends from now on."""
    sent: list[str] = []
    send = store.client.query

    def spy(sql: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(sql)
        return send(sql, *args, **kwargs)

    monkeypatch.setattr(store.client, "query", spy)
    return sent


async def test_figures_never_scan_the_stored_lists(
    bq: BigQueryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BigQuery bills a query by the columns it names: status and report figures that named
    # friend_names were billed for every stored list (some 20 GB a call at 3.6M users).
    await bq.save([result("1", 4), result("2", 2), result("3", 0)])
    sent = sent_queries(bq, monkeypatch)
    rows = await bq.status_rows()
    (summary,) = await bq.partition_summary(since=T0)
    _width, bins = await bq.friend_histogram(bins=4)
    counts = await bq.list_counts()
    assert sorted(r.friend_count for r in rows) == [0, 2, 4]
    assert (summary.users, summary.friends) == (3, 6)
    assert sum(n for _, n in bins) == 3
    assert counts.ok == 3
    assert sent
    assert [sql for sql in sent if "friend_names" in sql] == []


async def test_rows_without_a_friend_count_are_counted_from_their_lists(
    bq: BigQueryStore, client: Any, bq_dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {
        "user_id": "42",
        "screen_name": "old_timer",
        "friend_names": ["a", "b", "c"],
        "start_at": "2019-05-01T10:00:00+00:00",
        "end_at": "2019-05-01T10:00:05+00:00",
    }
    errors = client.insert_rows_json(
        f"{PROJECT}.{bq_dataset}.user_friends", [old], retry=None, timeout=20
    )
    assert errors == []
    await bq.save([result("1", 4)])
    sent = sent_queries(bq, monkeypatch)
    with capture_logs() as logs:
        rows = await bq.status_rows()
        summaries = await bq.partition_summary(since=T0)
    assert sorted((r.user_id, r.friend_count) for r in rows) == [("1", 4), ("42", 3)]
    assert sum(s.friends for s in summaries) == 7
    assert any("friend_names" in sql for sql in sent)
    (warning,) = [e for e in logs if e["event"] == "store.friend_counts_missing"]
    assert warning["rows"] == 1


async def test_many_rows_go_in_several_chunks(bq: BigQueryStore) -> None:
    # 600 rows is more than one request's row bound; every row arrives once.
    rows = [result(str(i), 1) for i in range(600)]
    await bq.save(rows)
    assert await bq.result_count() == 600


async def test_unreachable_server_is_store_unavailable(unused_tcp_port: int) -> None:
    settings = bq_settings(
        f"http://127.0.0.1:{unused_tcp_port}",
        "nowhere",
        store_attempts=2,
        store_retry_deadline=2.0,
        write_timeout=2.0,
    )
    # Opening is retried (store_attempts) by its caller, then the store is unavailable.
    with capture_logs() as logs, pytest.raises(StoreUnavailableError) as caught:
        async with opened_store(store_config(settings)):
            pass
    message = str(caught.value)
    assert "\n" not in message
    assert "BigQuery" in message
    assert [e["attempt"] for e in logs if e["event"] == "store.retry"] == [1]
