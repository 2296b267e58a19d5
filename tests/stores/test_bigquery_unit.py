"""BigQuery store behaviour the local server cannot show, with a fake client at the seam."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud.bigquery import SchemaField
from structlog.testing import capture_logs

from friendscrape.config import Settings
from friendscrape.configparts import bigquery_config, store_retry_policy
from friendscrape.errors import StoreError, StoreTransientError, StoreUnavailableError, UsageError
from friendscrape.models import FriendList, Status
from friendscrape.retry import retry_call
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores.bigquery import BigQueryStore, StoreInsertError

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
URL = "bigquery://test-project/friends"


def result(user_id: str, names: int = 2, *, start: datetime = T0) -> FriendList:
    return FriendList(
        user_id=user_id,
        screen_name=f"name_{user_id}",
        status=Status.OK,
        source="twitter-mobile",
        partition=1,
        start_at=start,
        end_at=start + timedelta(seconds=5),
        friend_names=tuple(f"friend_name_{i:05d}" for i in range(names)),
    )


class FakeClient:
    """Stands in for google.cloud.bigquery.Client: scripted insertAll answers."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.answers = list(answers or [])
        self.calls: list[dict[str, Any]] = []
        self.threads: set[int] = set()
        self.tables: dict[str, Any] = {}
        self.updated: list[Any] = []

    def insert_rows_json(self, table: str, rows: list[dict[str, Any]], **kwargs: Any) -> Any:
        self.threads.add(threading.get_ident())
        self.calls.append({"table": table, "rows": rows, **kwargs})
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_dataset(self, dataset_id: str, **_: Any) -> object:
        return object()

    def get_table(self, table_id: str, **_: Any) -> Any:
        if table_id not in self.tables:
            raise gexc.NotFound(table_id)
        return self.tables[table_id]

    def create_table(self, table: Any, **_: Any) -> Any:
        self.tables[f"{table.project}.{table.dataset_id}.{table.table_id}"] = table
        return table

    def update_table(self, table: Any, fields: list[str], **kwargs: Any) -> Any:
        self.updated.append((table, fields, kwargs))
        return table

    def close(self) -> None:
        pass


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": URL,
        "store_attempts": 4,
        "store_retry_deadline": 10.0,
        "write_timeout": 7.0,
        "retry_base_wait": 0.001,
        "retry_max_wait": 0.01,
        # These tests fake the streaming-insert client; the Storage Write API is tested
        # against the local server (test_bigquery_write_api.py).
        "bigquery_write_api": "insert_all",
    }
    values.update(overrides)
    return Settings(**values)


def make_store(client: FakeClient, **overrides: Any) -> BigQueryStore:
    config = bigquery_config(settings(**overrides))
    return BigQueryStore(schema.parse_url(URL), config, client=client, run_id="run1")


async def save_as_the_writer_does(
    client: FakeClient, results: list[FriendList], **overrides: Any
) -> None:
    """One save, retried by its caller with the store policy (stores never retry)."""
    store = make_store(client, **overrides)
    await retry_call(
        lambda: store.save(results),
        on=StoreTransientError,
        policy=store_retry_policy(settings(**overrides)),
        event="writer.retry",
    )


def row_error(index: int, reason: str) -> dict[str, Any]:
    return {"index": index, "errors": [{"reason": reason, "message": f"row {index}: {reason}"}]}


# -- URLs and names -------------------------------------------------------------------


def test_url_gives_project_and_dataset() -> None:
    location = schema.parse_url("bigquery://my-project-1/friend_graph")
    assert (location.project, location.dataset) == ("my-project-1", "friend_graph")
    assert location.table("users") == "`my-project-1.friend_graph.users`"
    assert schema.parse_url("bigquery://example.com:proj-42/ds").project == "example.com:proj-42"


@pytest.mark.parametrize(
    "url",
    [
        "bigquery://proj/ds",  # project ids are at least 6 characters
        "bigquery://my-project/ds.users",
        "bigquery://my-project/ds`x",
        "bigquery://my-project/ds where 1=1",
        "bigquery://my-project/",
        "bigquery://MY-PROJECT/ds",
        "bigquery:/my-project/ds",
        "sqlite:///x.db",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        BigQueryStore.from_url(url, bigquery_config(settings()))


# -- chunks and row keys --------------------------------------------------------------


def test_chunks_are_bounded_by_rows_and_bytes() -> None:
    big = schema.to_row(result("1", 2000), run_id="r", key="k")
    size = len(json.dumps(big).encode())
    assert 25_000 < size < 60_000  # a user with 2,000 names is tens of KB

    rows = [big] * 300
    ids = [str(i) for i in range(300)]
    chunks = list(schema.chunks(rows, ids, max_rows=500, max_bytes=1_000_000))
    assert all(len(json.dumps(list(c.rows)).encode()) <= 1_000_000 for c in chunks)
    assert sum(len(c.rows) for c in chunks) == 300
    assert [i for c in chunks for i in c.row_ids] == ids

    small = [schema.to_row(result(str(i), 1), run_id="r", key="k") for i in range(1201)]
    by_rows = list(schema.chunks(small, [str(i) for i in range(1201)]))
    assert [len(c.rows) for c in by_rows] == [500, 500, 201]


def test_row_keys_repeat_for_a_retry_and_differ_for_a_new_try() -> None:
    first = result("7")
    assert schema.row_key(first, "run1") == schema.row_key(first, "run1")
    assert schema.row_key(first, "run1") != schema.row_key(first, "run2")
    again = result("7", start=T0 + timedelta(minutes=1))
    assert schema.row_key(first, "run1") != schema.row_key(again, "run1")


# -- streaming inserts ----------------------------------------------------------------


async def test_insert_runs_in_a_thread_with_our_own_retry_and_timeout() -> None:
    client = FakeClient()
    store = make_store(client)
    await store.save([result("1"), result("2")])

    (call,) = client.calls
    assert call["table"] == "test-project.friends.user_friends"
    assert call["retry"] is None
    assert call["timeout"] == 7.0
    assert [r["user_id"] for r in call["rows"]] == ["1", "2"]
    assert call["row_ids"] == [r["row_key"] for r in call["rows"]]
    assert threading.get_ident() not in client.threads


async def test_the_store_itself_never_retries() -> None:
    # One layer retries: a transient failure leaves the store at once, classified.
    client = FakeClient([gexc.ServiceUnavailable("busy"), []])
    with capture_logs() as logs, pytest.raises(StoreTransientError):
        await make_store(client).save([result("1")])
    assert len(client.calls) == 1
    assert not [e for e in logs if e["event"].endswith("retry")]


async def test_a_retried_chunk_keeps_its_row_ids() -> None:
    client = FakeClient([gexc.ServiceUnavailable("busy"), gexc.InternalServerError("oops"), []])
    with capture_logs() as logs:
        await save_as_the_writer_does(client, [result("1"), result("2")])

    assert len(client.calls) == 3
    assert client.calls[0]["row_ids"] == client.calls[1]["row_ids"] == client.calls[2]["row_ids"]
    retries = [e for e in logs if e["event"] == "writer.retry"]
    assert [e["attempt"] for e in retries] == [1, 2]


async def test_rate_limit_is_retried() -> None:
    limited = gexc.Forbidden("slow down", errors=[{"reason": "rateLimitExceeded"}])
    client = FakeClient([limited, []])
    await save_as_the_writer_does(client, [result("1")])
    assert len(client.calls) == 2


async def test_transient_errors_past_the_budget_raise_store_transient() -> None:
    client = FakeClient([gexc.ServiceUnavailable("down")] * 10)
    with pytest.raises(StoreTransientError):
        await save_as_the_writer_does(client, [result("1")], store_attempts=3)
    assert len(client.calls) == 3


async def test_bad_request_is_not_retried() -> None:
    client = FakeClient([gexc.BadRequest("no such field")])
    with pytest.raises(StoreError) as caught:
        await make_store(client).save([result("1")])
    assert not isinstance(caught.value, StoreTransientError)
    assert len(client.calls) == 1


async def test_invalid_rows_raise_and_are_logged() -> None:
    client = FakeClient([[row_error(1, "invalid"), row_error(0, "stopped")]])
    with capture_logs() as logs, pytest.raises(StoreInsertError) as caught:
        await make_store(client).save([result("1"), result("2")])

    assert isinstance(caught.value, StoreError)
    assert "invalid" in str(caught.value)
    assert len(caught.value.errors) == 2
    assert len(client.calls) == 1
    (event,) = [e for e in logs if e["event"] == "store.insert_errors"]
    assert event["log_level"] == "error"
    assert event["failed"] == 2
    assert event["user_ids"] == ["1", "2"]


async def test_transient_row_errors_resend_only_those_rows() -> None:
    client = FakeClient([[row_error(1, "backendError")], []])
    await save_as_the_writer_does(client, [result("1"), result("2"), result("3")])

    first, second = client.calls
    assert [r["user_id"] for r in second["rows"]] == ["2"]
    assert second["row_ids"] == [first["row_ids"][1]]


async def test_transient_row_errors_past_the_budget_raise_store_transient() -> None:
    client = FakeClient([[row_error(0, "backendError")]] * 10)
    with capture_logs() as logs, pytest.raises(StoreTransientError):
        await save_as_the_writer_does(client, [result("1")], store_attempts=2)
    assert len(client.calls) == 2
    assert any(e["event"] == "store.insert_errors" for e in logs)


async def test_big_saves_are_split_into_requests_under_the_size_limit() -> None:
    client = FakeClient()
    await make_store(client).save([result(str(i), 2000) for i in range(200)])
    assert len(client.calls) >= 2
    for call in client.calls:
        body = [
            {"insertId": i, "json": r} for i, r in zip(call["row_ids"], call["rows"], strict=True)
        ]
        assert len(json.dumps({"rows": body}).encode()) < schema.MAX_CHUNK_BYTES + 10_000
    assert sum(len(c["rows"]) for c in client.calls) == 200


# -- opening --------------------------------------------------------------------------


async def test_open_adds_new_columns_to_the_original_table() -> None:
    from google.cloud import bigquery  # noqa: PLC0415

    client = FakeClient()
    original = bigquery.Table(
        "test-project.friends.user_friends", schema=list(schema.RESULTS_SCHEMA[:6])
    )
    client.tables["test-project.friends.user_friends"] = original
    await make_store(client).open()

    # The schema, then (a table made before waves) the clustering by wave.
    (table, fields, kwargs), (clustered, cluster_fields, _) = client.updated
    assert cluster_fields == ["clustering_fields"]
    assert clustered.clustering_fields == ["wave"]
    assert fields == ["schema"]
    assert kwargs["retry"] is None
    names = [f.name for f in table.schema]
    assert names[:6] == [
        "user_id",
        "screen_name",
        "friend_count",
        "friend_names",
        "start_at",
        "end_at",
    ]
    assert names == [f.name for f in schema.RESULTS_SCHEMA]
    assert "test-project.friends.partitions" in client.tables


async def test_open_refuses_a_column_of_another_type() -> None:
    from google.cloud import bigquery  # noqa: PLC0415

    client = FakeClient()
    wrong = [SchemaField("user_id", "INT64"), *schema.RESULTS_SCHEMA[1:]]
    client.tables["test-project.friends.user_friends"] = bigquery.Table(
        "test-project.friends.user_friends", schema=wrong
    )
    with pytest.raises(StoreUnavailableError, match="user_id"):
        await make_store(client).open()


async def test_missing_credentials_are_store_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    store = BigQueryStore.from_url(URL, bigquery_config(settings()))
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert "credentials" in str(caught.value)
    assert "\n" not in str(caught.value)
