"""The BigQuery store: users, the partition plan and results in one BigQuery dataset.

Tables (created when missing): ``users``, ``user_friends`` (the original deployment's
columns first) and ``partitions`` (the stored plan, one row per user). Results are
appended through the Storage Write API's default stream (``bigquery_write.py``), or with
streaming inserts when set so or when that API is refused; a user collected again gets a
new row, and every read keeps each user's newest row, so duplicates left by retried
appends or inserts never show.

Attempts: each row carries the attempts of one collection; a user's attempts are the
sum over its distinct rows (rows are told apart by ``row_key``, the insertId), so a
retried insert is counted once and a re-collected user counts every try.

The blocking client runs only through ``asyncio.to_thread``; every call passes our own
``timeout`` and no retry: a transient failure is raised as StoreTransientError for the
caller to retry (stores never retry themselves). The one exception is paging through
``results``, which no caller can retry from outside the iterator: the client's own page
retry covers it, with our predicate and ``store_retry_deadline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import requests
import structlog
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.exceptions import GoogleAuthError
from google.cloud import bigquery

from friendscrape.errors import StoreError, StoreTransientError, StoreUnavailableError
from friendscrape.models import FriendList, Partition, User, UserPage
from friendscrape.stores import bigquery_graph as graph
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import figures, paging, planning, rows
from friendscrape.stores.base import (
    IMPORT_BATCH,
    Again,
    EdgeList,
    ImportResult,
    Lease,
    LeaseHolder,
    ListCounts,
    NodeRow,
    RunSample,
    SampleBucket,
    StatusRow,
    StatusSummary,
    now_utc,
)
from friendscrape.stores.bigquery_write import StorageWriter, WriteApiRefusedError

if TYPE_CHECKING:
    from friendscrape.config import Settings

T = TypeVar("T")
log = structlog.get_logger(__name__)

# Per-row insert error reasons worth sending again; anything else ("invalid", ...) is
# our bug or a schema mismatch and retrying would only repeat it.
_TRANSIENT_ROW_REASONS = frozenset(
    {"backendError", "internalError", "timeout", "rateLimitExceeded"}
)
_IMPORT_CHUNK = IMPORT_BATCH
_RESULT_PAGE = 1_000


class StoreInsertError(StoreError):
    """BigQuery refused rows of a streaming insert; ``errors`` are its insertErrors."""

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = list(errors)


def is_transient(exc: BaseException) -> bool:
    """Errors a later attempt may not see: 5xx, 429, rate limits, lost connections."""
    if isinstance(exc, gexc.ServerError | gexc.TooManyRequests):
        return True
    if isinstance(exc, gexc.Forbidden):
        return any(e.get("reason") == "rateLimitExceeded" for e in exc.errors or ())
    if isinstance(exc, gexc.BadRequest):
        # Two DML statements on one table at once: BigQuery refuses the later one.
        return "concurrent update" in str(exc)
    return isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | TimeoutError
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


# Plan order as in partition.py: ids of up to 19 ASCII digits that fit INT64 sort as
# numbers, before every other id, which sorts as text.
_NUM = "IF(REGEXP_CONTAINS(user_id, r'^[0-9]{1,19}$'), SAFE_CAST(user_id AS INT64), NULL)"
_ORDER = "num IS NULL, num, user_id"
# Backquoted: `partition`, `at` and `final` are reserved words to some SQL engines.
_SAMPLE_COLUMNS = ", ".join(f"`{name}`" for name in rows.SAMPLE_COLUMNS)
_STATUS_COLUMNS = "user_id, `partition`, status, friend_count, friend_names, start_at, end_at"


@dataclass(frozen=True, slots=True)
class BigQueryConfig:
    """The settings the BigQuery store uses: where to reach it, how to write, how long
    one call may take."""

    endpoint: str | None
    grpc_endpoint: str | None
    write_api: str
    write_timeout: float
    retry_deadline: float

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryConfig:
        """The store's part of the settings."""
        return cls(
            endpoint=settings.bigquery_endpoint,
            grpc_endpoint=settings.bigquery_grpc_endpoint,
            write_api=settings.bigquery_write_api,
            write_timeout=settings.write_timeout,
            retry_deadline=settings.store_retry_deadline,
        )


class BigQueryStore:
    """The Store protocol on BigQuery; build with ``from_url``."""

    def __init__(
        self,
        location: schema.Location,
        config: BigQueryConfig,
        *,
        client: Any | None = None,
        run_id: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.location = location
        self._config = config
        self._read_only = read_only
        self._client: Any | None = client
        self.run_id = run_id or secrets.token_hex(6)
        # Row keys a save that then failed got in: saving the same results again (the
        # caller's retry) sends only the rest. Cleared by the next save that completes.
        self._accepted: set[str] = set()
        # Results go through the Storage Write API unless set otherwise or refused once;
        # an emulator named without its gRPC port gets streaming inserts (the API would
        # otherwise go to Google).
        self._write_api = config.write_api == "storage" and (
            config.endpoint is None or config.grpc_endpoint is not None
        )
        self._writer: StorageWriter | None = None
        self._log = log.bind(store="bigquery", dataset=f"{location.project}.{location.dataset}")

    @classmethod
    def from_url(cls, url: str, settings: Settings, *, read_only: bool = False) -> BigQueryStore:
        """A store for ``bigquery://PROJECT/DATASET`` (UsageError when the URL is bad)."""
        return cls(
            schema.parse_url(url), BigQueryConfig.from_settings(settings), read_only=read_only
        )

    # -- plumbing -------------------------------------------------------------------

    def _new_client(self) -> Any:
        endpoint = self._config.endpoint
        if endpoint:
            from google.api_core.client_options import ClientOptions  # noqa: PLC0415
            from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

            return bigquery.Client(
                project=self.location.project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=ClientOptions(api_endpoint=endpoint),
            )
        return bigquery.Client(project=self.location.project)

    @property
    def client(self) -> Any:
        if self._client is None:
            msg = "the BigQuery store is not open"
            raise StoreUnavailableError(msg)
        return self._client

    def _timeout(self) -> float:
        return min(self._config.write_timeout, self._config.retry_deadline)

    def _page_retry(self) -> Retry:
        # For result paging inside the client, where no loop of ours can retry a page.
        return Retry(predicate=is_transient, timeout=self._config.retry_deadline)

    async def _call(self, what: str, func: Callable[[], T]) -> T:
        """Run one blocking call in a thread, once; its failure classified as a StoreError
        (StoreTransientError when another try may pass: the caller decides to retry)."""
        try:
            return await asyncio.to_thread(func)
        except StoreError:
            raise
        except GoogleAuthError as exc:
            msg = f"BigQuery credentials: {_describe(exc)}"
            raise StoreUnavailableError(msg) from None
        except Exception as exc:
            if is_transient(exc):
                msg = f"BigQuery {what} failed: {_describe(exc)}"
                raise StoreTransientError(msg) from exc
            if isinstance(exc, gexc.GoogleAPIError):
                msg = f"BigQuery {what} failed: {_describe(exc)}"
                raise StoreError(msg) from exc
            raise

    def _query_sync(
        self, sql: str, params: Sequence[Any] = (), *, page_size: int | None = None
    ) -> Any:
        config = bigquery.QueryJobConfig(query_parameters=list(params))
        timeout = self._timeout()
        job = self.client.query(sql, job_config=config, retry=None, job_retry=None, timeout=timeout)
        # Only ``results`` pages (page_size) get the client's retry: a whole query is
        # retried by our caller.
        page_retry = self._page_retry() if page_size is not None else None
        return job.result(timeout=timeout, retry=page_retry, job_retry=None, page_size=page_size)

    async def _rows(self, what: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            return [dict(row.items()) for row in self._query_sync(sql, params)]

        return await self._call(what, run)

    def _t(self, name: str) -> str:
        return self.location.table(name)

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the dataset and missing tables, add missing new columns."""
        where = f"{self.location.project}.{self.location.dataset}"
        try:
            await self._call("open", self._open_sync)
        except StoreUnavailableError:
            raise
        except StoreTransientError as exc:
            # Worth another try; a caller whose tries are spent reports it unavailable.
            msg = f"cannot open BigQuery dataset {where}: {exc}"
            raise StoreTransientError(msg) from None
        except StoreError as exc:
            msg = f"cannot open BigQuery dataset {where}: {exc}"
            raise StoreUnavailableError(msg) from None
        self._log.info("store.open", run_id=self.run_id)

    def _open_sync(self) -> None:
        if self._client is None:
            self._client = self._new_client()
        if self._read_only:
            self._check_sync()
            return
        client = self._client
        dataset_id = f"{self.location.project}.{self.location.dataset}"
        timeout = self._timeout()
        try:
            client.get_dataset(dataset_id, retry=None, timeout=timeout)
        except gexc.NotFound:
            client.create_dataset(dataset_id, exists_ok=True, retry=None, timeout=timeout)
        for name, fields in schema.SCHEMAS.items():
            table_id = self.location.table_id(name)
            try:
                table = client.get_table(table_id, retry=None, timeout=timeout)
            except gexc.NotFound:
                table = bigquery.Table(table_id, schema=list(fields))
                if name == schema.PARTITIONS:
                    table.clustering_fields = ["partition"]
                client.create_table(table, exists_ok=True, retry=None, timeout=timeout)
                continue
            self._check_columns(client, table, fields)
        self._create_views(client, timeout)

    def _check_sync(self) -> None:
        """Read-only: the dataset and its tables must exist; nothing is created or altered."""
        client = self.client
        where = f"{self.location.project}.{self.location.dataset}"
        timeout = self._timeout()
        try:
            client.get_dataset(where, retry=None, timeout=timeout)
        except gexc.NotFound:
            msg = f"no BigQuery dataset {where}: import users first, or check --store"
            raise StoreUnavailableError(msg) from None
        for name in schema.CORE_TABLES:
            try:
                table = client.get_table(self.location.table_id(name), retry=None, timeout=timeout)
            except gexc.NotFound:
                msg = f"BigQuery dataset {where} is not a friendscrape store (no {name} table)"
                raise StoreUnavailableError(msg) from None
            have = {field.name for field in table.schema}
            missing = [f.name for f in schema.SCHEMAS[name] if f.name not in have]
            if missing:
                msg = (
                    f"table {where}.{name} lacks the columns {', '.join(missing)}: run a "
                    "command that writes (e.g. 'friendscrape partitions place') to add them"
                )
                raise StoreUnavailableError(msg)

    def _check_columns(self, client: Any, table: Any, fields: Sequence[Any]) -> None:
        """Keep existing columns; add the new NULLABLE ones an older table lacks."""
        have = {field.name: field for field in table.schema}
        for field in fields:
            old = have.get(field.name)
            if old is not None and (old.field_type, old.mode) != (field.field_type, field.mode):
                same_int = {old.field_type, field.field_type} <= {"INTEGER", "INT64"}
                same_bool = {old.field_type, field.field_type} <= {"BOOLEAN", "BOOL"}
                same_type = same_int or same_bool or old.field_type == field.field_type
                # A REQUIRED column BigQuery relaxed to NULLABLE (as an older plan's
                # CREATE OR REPLACE TABLE did) holds the same data; it cannot be tightened
                # back, and friendscrape never writes NULL there.
                relaxed = old.mode == "NULLABLE" and field.mode == "REQUIRED"
                if not (same_type and (old.mode == field.mode or relaxed)):
                    msg = (
                        f"table {table.table_id} column {field.name} is {old.mode} "
                        f"{old.field_type}, expected {field.mode} {field.field_type}"
                    )
                    raise StoreUnavailableError(msg)
        missing = [f for f in fields if f.name not in have]
        if missing:
            table.schema = [*table.schema, *missing]
            client.update_table(table, ["schema"], retry=None, timeout=self._timeout())
            self._log.info(
                "store.columns_added", table=table.table_id, columns=[f.name for f in missing]
            )

    async def close(self) -> None:
        """Close the client's HTTP session; safe to call twice."""
        client, self._client = self._client, None
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.close)
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- users and plan -------------------------------------------------------------

    async def import_users(self, users: Sequence[User]) -> ImportResult:
        """MERGE users by user_id; the last of repeated ids in the input wins."""
        return await self.import_stream([users], again=_once)

    async def import_stream(
        self, batches: Iterable[Sequence[User]], *, again: Again[Any]
    ) -> ImportResult:
        """Spool the users to a local NDJSON file, load it with one load job into a
        staging table, count and MERGE it in two queries, then drop the staging table.

        Three jobs whatever the size (a 5,000-user MERGE each was 1,440 jobs at 3.6M
        users); memory holds one batch at a time. The staging table expires after a day
        in case the process dies before dropping it. A retried load replaces the staging
        table's rows (WRITE_TRUNCATE); a retried MERGE changes nothing more.
        """
        staging = self.location.table_id(f"{schema.USERS}_import_{self.run_id}")
        with tempfile.TemporaryFile("w+b") as spool:
            read = 0
            for batch in batches:
                lines = [
                    json.dumps(
                        {
                            "ord": read + i,
                            "user_id": u.user_id,
                            "screen_name": u.screen_name,
                            "following_count": u.following_count,
                        },
                        ensure_ascii=False,
                    )
                    for i, u in enumerate(batch)
                ]
                spool.write(("\n".join(lines) + "\n").encode() if lines else b"")
                read += len(batch)
            if read == 0:
                return ImportResult(read=0, added=0, updated=0)
            await again(
                "import_users", lambda: self._call("import_users", self._stage_sync(staging))
            )
            await again(
                "import_users", lambda: self._call("import_users", self._load_sync(spool, staging))
            )
        try:
            counts = await again(
                "import_users", lambda: self._rows("import_users", self._import_counts_sql(staging))
            )
            await again(
                "import_users", lambda: self._rows("import_users", self._import_merge_sql(staging))
            )
        finally:
            await again(
                "import_users", lambda: self._call("import_users", self._drop_sync(staging))
            )
        row = counts[0]
        distinct, existing = int(row["distinct_ids"]), int(row["existing"])
        result = ImportResult(
            read=read,
            added=distinct - existing,
            updated=int(row["changed"]),
            duplicates=read - distinct,
        )
        self._log.info(
            "store.import", read=read, added=result.added, updated=result.updated, jobs=3
        )
        return result

    def _stage_sync(self, staging: str) -> Callable[[], None]:
        def run() -> None:
            table = bigquery.Table(staging, schema=list(schema.IMPORT_SCHEMA))
            table.expires = datetime.now(UTC) + timedelta(days=1)
            self.client.create_table(table, exists_ok=True, retry=None, timeout=self._timeout())

        return run

    def _load_sync(self, spool: IO[bytes], staging: str) -> Callable[[], None]:
        def run() -> None:
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                schema=list(schema.IMPORT_SCHEMA),
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            )
            # No size: a resumable upload in chunks, so the file is never read whole.
            job = self.client.load_table_from_file(
                spool, staging, rewind=True, job_config=config, timeout=self._timeout()
            )
            job.result(timeout=self._config.retry_deadline, retry=None)

        return run

    def _drop_sync(self, staging: str) -> Callable[[], None]:
        def run() -> None:
            self.client.delete_table(
                staging, not_found_ok=True, retry=None, timeout=self._timeout()
            )

        return run

    def _latest_import(self, staging: str) -> str:
        # Each user's last row of the file wins, as on SQLite.
        return f"""
            SELECT user_id, screen_name, following_count FROM `{staging}`
            WHERE TRUE
            QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ord DESC) = 1
        """

    def _import_counts_sql(self, staging: str) -> str:
        # Counted before the MERGE, as the SQLite store counts: ``changed`` are existing
        # users whose name or (given) following count changes.
        return f"""
            WITH r AS ({self._latest_import(staging)})
            SELECT COUNT(*) AS distinct_ids, COUNT(t.user_id) AS existing,
                   COUNTIF(t.user_id IS NOT NULL AND (t.screen_name IS DISTINCT FROM r.screen_name
                       OR (r.following_count IS NOT NULL
                           AND t.following_count IS DISTINCT FROM r.following_count))) AS changed
            FROM r
            LEFT JOIN {self._t(schema.USERS)} AS t ON t.user_id = r.user_id
        """

    def _import_merge_sql(self, staging: str) -> str:
        return f"""
            MERGE {self._t(schema.USERS)} AS t
            USING ({self._latest_import(staging)}) AS s
            ON t.user_id = s.user_id
            WHEN MATCHED THEN UPDATE SET
                screen_name = s.screen_name,
                following_count = COALESCE(s.following_count, t.following_count)
            WHEN NOT MATCHED THEN INSERT (user_id, screen_name, following_count)
                VALUES (s.user_id, s.screen_name, s.following_count)
        """

    async def user_count(self) -> int:
        """Users stored (each id once)."""
        rows = await self._rows(
            "user_count", f"SELECT COUNT(DISTINCT user_id) AS n FROM {self._t(schema.USERS)}"
        )
        return int(rows[0]["n"])

    async def result_count(self) -> int:
        """Users with at least one result row."""
        rows = await self._rows(
            "result_count", f"SELECT COUNT(DISTINCT user_id) AS n FROM {self._t(schema.RESULTS)}"
        )
        return int(rows[0]["n"])

    async def plan_partitions(self, count: int) -> list[Partition]:
        """Replace the plan with NTILE(count) over users in plan order, computed in BigQuery."""
        planning.check_count(count)
        # Rows replaced inside the table ``open`` created from the declared schema, in one
        # transaction: CREATE OR REPLACE TABLE ... AS SELECT would drop the REQUIRED modes,
        # and readers would see no plan between a DELETE and an INSERT run apart.
        table = self._t(schema.PARTITIONS)
        sql = f"""
            BEGIN TRANSACTION;
            DELETE FROM {table} WHERE TRUE;
            INSERT INTO {table} (user_id, `partition`, position)
            WITH u AS (
                SELECT DISTINCT user_id, {_NUM} AS num FROM {self._t(schema.USERS)}
            )
            SELECT user_id,
                   NTILE({int(count)}) OVER (ORDER BY {_ORDER}) AS `partition`,
                   ROW_NUMBER() OVER (ORDER BY {_ORDER}) AS position
            FROM u;
            COMMIT TRANSACTION;
        """
        # The count is formatted in (an int, checked above): the local server does not
        # pass query parameters into a multi-statement script.
        await self._rows("plan_partitions", sql)
        plan = await self.partitions()
        self._log.info("store.plan", partitions=len(plan), users=sum(p.user_count for p in plan))
        return plan

    async def partitions(self) -> list[Partition]:
        """The stored plan, by partition number; each range's ends in plan order (users
        placed after the plan sit past every position, so positions cannot give them)."""
        sql = f"""
            WITH k AS (
                SELECT `partition` AS number, user_id, {_NUM} AS num
                FROM {self._t(schema.PARTITIONS)}
            ),
            ranked AS (
                SELECT number, user_id,
                       ROW_NUMBER() OVER (PARTITION BY number ORDER BY {_ORDER}) AS up,
                       ROW_NUMBER() OVER (
                           PARTITION BY number ORDER BY num IS NULL DESC, num DESC, user_id DESC
                       ) AS down
                FROM k
            )
            SELECT number, COUNT(*) AS user_count,
                   MAX(IF(up = 1, user_id, NULL)) AS min_user_id,
                   MAX(IF(down = 1, user_id, NULL)) AS max_user_id
            FROM ranked
            GROUP BY number
            ORDER BY number
        """
        return [rows.partition(r) for r in await self._rows("partitions", sql)]

    async def unplaced_count(self) -> int:
        """Users with no row in the plan, when there is a plan."""
        rows = await self._rows(
            "unplaced_count",
            f"""
            SELECT COUNT(DISTINCT u.user_id) AS n,
                   (SELECT COUNT(*) FROM {self._t(schema.PARTITIONS)}) AS planned
            FROM {self._t(schema.USERS)} AS u
            WHERE NOT EXISTS (
                SELECT 1 FROM {self._t(schema.PARTITIONS)} AS p WHERE p.user_id = u.user_id
            )
            """,
        )
        return int(rows[0]["n"]) if int(rows[0]["planned"] or 0) else 0

    async def place_unplaced(self) -> dict[int, int]:
        """Append plan rows for users outside the plan (see Store.place_unplaced).

        Not one transaction: a place interrupted between chunks leaves the rest unplaced
        for the next call, and a user already placed is never inserted twice.
        """
        plan = await self.partitions()
        if not plan:
            return {}
        table = self._t(schema.PARTITIONS)
        unplaced = await self._rows(
            "place_unplaced",
            f"""
            SELECT DISTINCT u.user_id AS user_id,
                   (SELECT COALESCE(MAX(position), 0) FROM {table}) AS last
            FROM {self._t(schema.USERS)} AS u
            WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.user_id = u.user_id)
            """,
        )
        if not unplaced:
            return {}
        last = int(unplaced[0]["last"] or 0)
        placed = planning.placements([r["user_id"] for r in unplaced], plan, last)
        for _, batch in paging.batches(placed, _IMPORT_CHUNK):
            param = bigquery.ArrayQueryParameter(
                "rows",
                "STRUCT",
                [
                    bigquery.StructQueryParameter(
                        None,
                        bigquery.ScalarQueryParameter("user_id", "STRING", p.user_id),
                        bigquery.ScalarQueryParameter("part", "INT64", p.partition),
                        bigquery.ScalarQueryParameter("position", "INT64", p.position),
                    )
                    for p in batch
                ],
            )
            await self._rows(
                "place_unplaced",
                f"""
                INSERT INTO {table} (user_id, `partition`, position)
                SELECT r.user_id, r.part, r.position FROM UNNEST(@rows) AS r
                WHERE NOT EXISTS (SELECT 1 FROM {table} AS p WHERE p.user_id = r.user_id)
                """,
                param,
            )
        counts = planning.placed_counts(placed)
        self._log.info("store.place", users=len(placed), partitions=counts)
        return counts

    # -- leases ---------------------------------------------------------------------
    #
    # BigQuery has no row locks or unique keys, so the lease is a compare-and-swap: the
    # MERGE replaces a lease only if it still names the holder we saw lapse, and two runs
    # that insert at once both read back every row and agree on one winner (earliest
    # acquired_at, then smallest run_id). BigQuery serialises DML on one table, which is
    # what makes this hold; it relies on hosts' clocks agreeing to within seconds.

    async def _lease_rows(self, partition: int) -> list[LeaseHolder]:
        found = await self._rows(
            "lease",
            f"""
            SELECT host, pid, run_id, acquired_at, expires_at FROM {self._t(schema.LEASES)}
            WHERE `partition` = @partition
            ORDER BY acquired_at, run_id
            """,
            bigquery.ScalarQueryParameter("partition", "INT64", partition),
        )
        return [rows.lease_holder(r) for r in found]

    async def leases(self) -> dict[int, LeaseHolder]:
        """Each partition's winning lease row (as ``_lease_rows`` orders them)."""
        found = await self._rows(
            "lease",
            f"""
            SELECT `partition` AS part, host, pid, run_id, acquired_at, expires_at
            FROM {self._t(schema.LEASES)}
            ORDER BY `partition`, acquired_at, run_id
            """,
        )
        return rows.leases(found)

    def _lease_params(self, lease: Lease, now: datetime) -> list[Any]:
        return [
            bigquery.ScalarQueryParameter("partition", "INT64", lease.partition),
            bigquery.ScalarQueryParameter("host", "STRING", lease.host),
            bigquery.ScalarQueryParameter("pid", "INT64", lease.pid),
            bigquery.ScalarQueryParameter("run_id", "STRING", lease.run_id),
            bigquery.ScalarQueryParameter("now", "TIMESTAMP", now),
            bigquery.ScalarQueryParameter("expires", "TIMESTAMP", lease.expires(now)),
        ]

    async def acquire_lease(self, lease: Lease) -> None:
        """Take the lease if free, lapsed or its holder's process is gone (same host)."""
        now = now_utc()
        holders = await self._lease_rows(lease.partition)
        current = holders[0] if holders else None
        if current is not None and current.run_id != lease.run_id and not current.gone(now):
            raise current.held_error(lease.partition, now)
        seen = current.run_id if current is not None else ""
        await self._rows(
            "lease",
            f"""
            MERGE {self._t(schema.LEASES)} AS t
            USING (SELECT @partition AS part) AS s
            ON t.`partition` = s.part
            WHEN MATCHED AND (t.run_id = @seen OR t.run_id = @run_id) THEN UPDATE SET
                host = @host, pid = @pid, run_id = @run_id,
                acquired_at = @now, heartbeat_at = @now, expires_at = @expires
            WHEN NOT MATCHED THEN INSERT
                (`partition`, host, pid, run_id, acquired_at, heartbeat_at, expires_at)
                VALUES (@partition, @host, @pid, @run_id, @now, @now, @expires)
            """,
            *self._lease_params(lease, now),
            bigquery.ScalarQueryParameter("seen", "STRING", seen),
        )
        holders = await self._lease_rows(lease.partition)
        if holders and holders[0].run_id == lease.run_id:
            self._log.info("store.lease_taken", partition=lease.partition, took_from=seen or None)
            return
        await self.release_lease(lease)
        if not holders:
            msg = f"BigQuery lease of partition {lease.partition}: the lease row vanished"
            raise StoreTransientError(msg)
        raise holders[0].held_error(lease.partition, now_utc())

    async def renew_lease(self, lease: Lease) -> bool:
        """Extend our lease; False when another run's row now wins."""
        now = now_utc()
        await self._rows(
            "lease",
            f"""
            UPDATE {self._t(schema.LEASES)}
            SET heartbeat_at = @now, expires_at = @expires
            WHERE `partition` = @partition AND run_id = @run_id
            """,
            *self._lease_params(lease, now)[:1],
            *self._lease_params(lease, now)[3:],
        )
        holders = await self._lease_rows(lease.partition)
        return bool(holders) and holders[0].run_id == lease.run_id

    async def release_lease(self, lease: Lease) -> None:
        """Delete our lease row, if it is still there."""
        await self._rows(
            "lease",
            f"""
            DELETE FROM {self._t(schema.LEASES)}
            WHERE `partition` = @partition AND run_id = @run_id
            """,
            bigquery.ScalarQueryParameter("partition", "INT64", lease.partition),
            bigquery.ScalarQueryParameter("run_id", "STRING", lease.run_id),
        )

    # -- run samples ----------------------------------------------------------------

    async def record_sample(self, sample: RunSample) -> None:
        """Append one sample with a DML insert (readable at once, unlike streaming)."""
        values = rows.sample_values(sample)
        marks = ", ".join(f"@{name}" for name in values)
        await self._rows(
            "record_sample",
            f"INSERT INTO {self._t(schema.SAMPLES)} ({_SAMPLE_COLUMNS}) VALUES ({marks})",
            *(
                bigquery.ScalarQueryParameter(field.name, field.field_type, values[field.name])
                for field in schema.SAMPLES_SCHEMA
            ),
        )

    async def _sample_rows(self, what: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a query on run_samples; none from a store made before that table (it
        is created by the first run, and a read-only open creates nothing)."""

        def run() -> list[dict[str, Any]]:
            try:
                return [dict(row.items()) for row in self._query_sync(sql, params)]
            except gexc.NotFound:
                return []

        return await self._call(what, run)

    async def latest_samples(self) -> dict[int, RunSample]:
        """Each partition's newest sample."""
        found = await self._sample_rows(
            "latest_samples",
            f"""
            SELECT {_SAMPLE_COLUMNS} FROM {self._t(schema.SAMPLES)}
            WHERE TRUE
            QUALIFY ROW_NUMBER() OVER (
                PARTITION BY `partition` ORDER BY `at` DESC, `final` DESC, users_done DESC
            ) = 1
            """,
        )
        return {int(r["partition"]): rows.run_sample(r) for r in found}

    async def sample_buckets(
        self, bucket_seconds: int, *, since: datetime | None = None
    ) -> list[SampleBucket]:
        """Samples summed per (bucket, partition) in BigQuery."""
        width = figures.at_least_one(bucket_seconds)
        found = await self._sample_rows(
            "sample_buckets",
            f"""
            SELECT DIV(UNIX_SECONDS(`at`), @width) AS b, `partition` AS part,
                   SUM(users_done) AS users_done, SUM(pages) AS pages,
                   SUM(rate_limited) AS rate_limited, SUM(paused_seconds) AS paused_seconds,
                   MIN(learned_rate) AS learned_rate, COUNT(*) AS samples
            FROM {self._t(schema.SAMPLES)}
            WHERE @since IS NULL OR `at` >= @since
            GROUP BY b, part
            ORDER BY b, part
            """,
            bigquery.ScalarQueryParameter("width", "INT64", width),
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
        )
        return [figures.sample_bucket(r, width) for r in found]

    # -- results --------------------------------------------------------------------

    def _latest(self, columns: str) -> str:
        """CTEs ``tries`` (one row per insert) and ``latest`` (each user's newest row).

        ``latest.total_attempts`` sums attempts over a user's distinct rows. Rows of the
        original deployment have no row_key or attempts: each counts as one try.
        """
        return f"""
            tries AS (
                SELECT {columns}, row_key, attempts
                FROM {self._t(schema.RESULTS)}
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY COALESCE(row_key, CONCAT(user_id, '@', CAST(start_at AS STRING)))
                    ORDER BY end_at DESC
                ) = 1
            ),
            latest AS (
                SELECT *, SUM(COALESCE(attempts, 1)) OVER (PARTITION BY user_id) AS total_attempts
                FROM tries
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id ORDER BY end_at DESC, row_key DESC
                ) = 1
            )
        """

    async def pending_users(
        self, partition: int, *, retry_failed: bool, cursor: str | None, limit: int
    ) -> UserPage:
        """Users of ``partition`` with no result (or a failed one), in plan order after cursor.

        The cursor is the plan position of the last user returned.
        """
        after = paging.cursor_after(cursor)
        sql = self._pending_sql(
            "p.position AS position, u.user_id AS user_id, u.screen_name AS screen_name,"
            " u.following_count AS following_count,"
            " (SELECT ANY_VALUE(x.resolved_id) FROM"
            f" {self._t(schema.RESOLVED)} AS x WHERE x.user_id = u.user_id) AS resolved_id",
            "AND p.position > @after ORDER BY p.position LIMIT @limit",
        )
        found = await self._rows(
            "pending_users",
            sql,
            bigquery.ScalarQueryParameter("partition", "INT64", partition),
            bigquery.ScalarQueryParameter("after", "INT64", after),
            bigquery.ScalarQueryParameter("retry_failed", "BOOL", retry_failed),
            bigquery.ScalarQueryParameter("limit", "INT64", limit),
        )
        return paging.user_page(found, limit)

    async def save_resolved(self, ids: Mapping[str, str]) -> None:
        """Append the looked-up ids (a DML insert: readable at once, unlike streaming)."""
        if not ids:
            return
        rows = bigquery.ArrayQueryParameter(
            "rows",
            "STRUCT",
            [
                bigquery.StructQueryParameter(
                    None,
                    bigquery.ScalarQueryParameter("user_id", "STRING", user_id),
                    bigquery.ScalarQueryParameter("resolved_id", "STRING", resolved_id),
                )
                for user_id, resolved_id in ids.items()
            ],
        )
        await self._rows(
            "save_resolved",
            f"""
            INSERT INTO {self._t(schema.RESOLVED)} (user_id, resolved_id)
            SELECT r.user_id, r.resolved_id FROM UNNEST(@rows) AS r
            """,
            rows,
        )

    async def pending_count(self, partition: int, *, retry_failed: bool) -> int:
        """How many users ``pending_users`` would return in all."""
        sql = self._pending_sql("COUNT(*) AS n", "")
        rows = await self._rows(
            "pending_count",
            sql,
            bigquery.ScalarQueryParameter("partition", "INT64", partition),
            bigquery.ScalarQueryParameter("retry_failed", "BOOL", retry_failed),
        )
        return int(rows[0]["n"])

    def _pending_sql(self, select: str, tail: str) -> str:
        return f"""
            WITH {self._latest("user_id, status, start_at, end_at")},
            u AS (
                SELECT user_id, screen_name, following_count FROM {self._t(schema.USERS)}
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id) = 1
            )
            SELECT {select}
            FROM {self._t(schema.PARTITIONS)} AS p
            JOIN u ON u.user_id = p.user_id
            LEFT JOIN latest AS r ON r.user_id = p.user_id
            WHERE p.`partition` = @partition
              AND (r.user_id IS NULL OR (@retry_failed AND r.status = 'failed'))
              {tail}
        """

    async def save(self, results: Sequence[FriendList]) -> None:
        """Append results with streaming inserts, chunked by rows and bytes.

        Not one transaction: a chunk that fails after an earlier one succeeded leaves the
        earlier rows in place; saving the same results again (a retry) sends only the rows
        not in yet, and a row sent twice is harmless anyway (same row key).
        """
        keys = [schema.row_key(result, self.run_id) for result in results]
        todo = [
            (result, key)
            for result, key in zip(results, keys, strict=True)
            if key not in self._accepted
        ]
        rows = [schema.to_row(result, run_id=self.run_id, key=key) for result, key in todo]
        for chunk in schema.chunks(rows, [key for _, key in todo]):
            if self._write_api:
                try:
                    await self._append_chunk(chunk)
                    continue
                except WriteApiRefusedError as exc:
                    # Refused, not failed: streaming inserts write the same rows.
                    self._log.warning("store.write_api_fallback", error=str(exc)[:300])
                    self._write_api = False
            await self._insert_chunk(chunk)
        self._accepted.clear()

    async def _append_chunk(self, chunk: schema.Chunk) -> None:
        """One chunk through the Storage Write API's default stream."""
        if self._writer is None:
            location, grpc = self.location, self._config.grpc_endpoint

            def connect() -> StorageWriter:
                return StorageWriter.connect(location, schema.RESULTS, grpc_endpoint=grpc)

            self._writer = await self._call("append", connect)
        writer = self._writer
        refused = await self._call(
            "append", lambda: writer.append(chunk.rows, timeout=self._timeout())
        )
        if refused:
            # The API writes none of a request's rows when it refuses one.
            self._log.error(
                "store.append_errors",
                rows=len(chunk.rows),
                failed=len(refused),
                user_ids=[chunk.rows[i]["user_id"] for i in refused[:20]],
            )
            msg = f"BigQuery refused {len(refused)} of {len(chunk.rows)} rows (Storage Write API)"
            raise StoreInsertError(msg, errors=[{"index": i} for i in refused])
        self._accepted.update(chunk.row_ids)
        self._log.debug("store.append", rows=len(chunk.rows))

    async def _insert_chunk(self, chunk: schema.Chunk) -> None:
        table_id = self.location.table_id(schema.RESULTS)
        started = asyncio.get_running_loop().time()

        def send() -> Sequence[dict[str, Any]]:
            return cast(
                "Sequence[dict[str, Any]]",
                self.client.insert_rows_json(
                    table_id,
                    list(chunk.rows),
                    row_ids=list(chunk.row_ids),
                    retry=None,
                    timeout=self._timeout(),
                ),
            )

        errors = await self._call("insert", send)
        failed = sorted({int(row["index"]) for row in errors})
        refused = set(failed)
        self._accepted.update(k for i, k in enumerate(chunk.row_ids) if i not in refused)
        if errors:
            reasons = {e.get("reason") for row in errors for e in row.get("errors", ())}
            # "stopped" rows were refused only because another row in the request was.
            transient = reasons - {"stopped"} <= _TRANSIENT_ROW_REASONS and reasons != {"stopped"}
            report = self._log.warning if transient else self._log.error
            report(
                "store.insert_errors",
                rows=len(chunk.rows),
                failed=len(failed),
                errors=errors[:5],
                user_ids=[chunk.rows[i]["user_id"] for i in failed[:20]],
            )
            listed = ", ".join(sorted(str(r) for r in reasons))
            if transient:
                msg = f"BigQuery insert: {len(failed)} of {len(chunk.rows)} rows failed ({listed})"
                raise StoreTransientError(msg)
            msg = f"BigQuery refused {len(failed)} of {len(chunk.rows)} rows: {listed}"
            raise StoreInsertError(msg, errors=errors)
        self._log.debug(
            "store.insert",
            rows=len(chunk.rows),
            seconds=round(asyncio.get_running_loop().time() - started, 3),
        )

    async def results(self) -> AsyncIterator[FriendList]:
        """Every user's newest result with total attempts, in plan order, page by page."""
        columns = (
            "user_id, screen_name, friend_count, friend_names, start_at, end_at, friend_ids,"
            " following_count, truncated, status, error, source, `partition`"
        )
        sql = f"""
            WITH {self._latest(columns)}
            SELECT * EXCEPT (attempts, total_attempts), total_attempts AS attempts, {_NUM} AS num
            FROM latest
            ORDER BY {_ORDER}
        """

        async for row in self._stream("results", sql, ()):
            yield rows.friend_list(row)

    def _graph_latest(self) -> str:
        return self._latest(
            "user_id, screen_name, friend_count, friend_names, friend_ids, following_count,"
            " truncated, status, source, `partition`, end_at"
        )

    async def _stream(self, what: str, sql: str, params: Sequence[Any]) -> AsyncIterator[Any]:
        """Rows of one query, a page at a time (the client pages the query's results)."""

        def first_page() -> Iterator[Any]:
            return iter(self._query_sync(sql, params, page_size=_RESULT_PAGE).pages)

        pages = await self._call(what, first_page)

        def next_page() -> list[dict[str, Any]]:
            page = next(pages, None)
            return [] if page is None else [dict(row.items()) for row in page]

        async def fetch() -> list[dict[str, Any]]:
            # A page fetch cannot be retried from outside a generator: the client's own
            # retry (our predicate and deadline) covers it.
            try:
                return await asyncio.to_thread(next_page)
            except gexc.GoogleAPIError as exc:
                msg = f"BigQuery {what}: {_describe(exc)}"
                raise StoreTransientError(msg) from exc

        async with contextlib.aclosing(paging.read_ahead(fetch)) as streamed:
            async for row in streamed:
                yield row

    async def edge_lists(self, *, partition: int | None = None) -> AsyncIterator[EdgeList]:
        """Edges unnested and resolved in the query, regrouped per user as they stream."""
        sql = f"""
            SELECT * FROM ({
            graph.edges_select(
                self._graph_latest(), self._t(schema.USERS), self._t(schema.PARTITIONS)
            )
        })
            WHERE @part IS NULL OR `partition` = @part
            ORDER BY num IS NULL, num, source_id, position
        """
        param = bigquery.ScalarQueryParameter("part", "INT64", partition)
        current: EdgeList | None = None
        async for row in self._stream("edges", sql, [param]):
            if current is not None and current.source_id != row["source_id"]:
                yield current
                current = None
            if current is None:
                current = EdgeList(
                    row["source_id"], row["source_name"] or "", row["platform"], [], [], []
                )
            current.names.append(row["target_name"])
            current.targets.append(row["target_id"] or "")
            current.known.append(bool(row["known"]))
        if current is not None:
            yield current

    async def nodes(self, *, partition: int | None = None) -> AsyncIterator[NodeRow]:
        sql = f"""
            SELECT * FROM ({
            graph.nodes_select(
                self._graph_latest(), self._t(schema.USERS), self._t(schema.PARTITIONS)
            )
        })
            WHERE @part IS NULL OR `partition` = @part
            ORDER BY num IS NULL, num, id
        """
        param = bigquery.ScalarQueryParameter("part", "INT64", partition)
        async for row in self._stream("nodes", sql, [param]):
            yield rows.node_row(row)

    def _create_views(self, client: Any, timeout: float) -> None:
        """The graph as views users can query in SQL: `edges` and `nodes`."""
        users, plan = self._t(schema.USERS), self._t(schema.PARTITIONS)
        for name, select in (
            (graph.EDGES_VIEW, graph.edges_select(self._graph_latest(), users, plan)),
            (graph.NODES_VIEW, graph.nodes_select(self._graph_latest(), users, plan)),
        ):
            view = bigquery.Table(self.location.table_id(name))
            view.view_query = f"SELECT * EXCEPT (num) FROM ({select})"
            client.create_table(view, exists_ok=True, retry=None, timeout=timeout)

    async def status_rows(self) -> list[StatusRow]:
        """Each user's newest result's figures."""
        sql = f"""
            WITH {self._latest(_STATUS_COLUMNS)}
            SELECT user_id, `partition` AS part, status,
                   COALESCE(friend_count, ARRAY_LENGTH(friend_names), 0) AS friend_count,
                   start_at, end_at, {_NUM} AS num
            FROM latest
            ORDER BY {_ORDER}
        """
        return [figures.status_row(r) for r in await self._rows("status_rows", sql)]

    async def finished_counts(self, *, bucket: int) -> list[tuple[int, int, int]]:
        """Each user's newest result, counted per plan partition and end-time bucket."""
        sql = f"""
            WITH {self._latest(_STATUS_COLUMNS)},
            plan AS (
                SELECT user_id, ANY_VALUE(`partition`) AS part
                FROM {self._t(schema.PARTITIONS)} GROUP BY user_id
            )
            SELECT part, b, COUNT(*) AS n FROM (
                SELECT COALESCE(plan.part, l.`partition`, 0) AS part,
                       DIV(UNIX_SECONDS(l.end_at), @bucket) AS b
                FROM latest AS l
                LEFT JOIN plan ON plan.user_id = l.user_id
                WHERE l.end_at IS NOT NULL
            )
            GROUP BY part, b
            ORDER BY part, b
        """
        param = bigquery.ScalarQueryParameter("bucket", "INT64", figures.at_least_one(bucket))
        return figures.finished_counts(await self._rows("finished_counts", sql, param))

    async def friend_histogram(self, *, bins: int) -> tuple[int, list[tuple[int, int]]]:
        """Users whose newest result is ok, counted per friend-count bin in BigQuery."""
        counted = "COALESCE(friend_count, ARRAY_LENGTH(friend_names), 0)"
        latest = f"WITH {self._latest(_STATUS_COLUMNS)}"
        top_rows = await self._rows(
            "friend_histogram",
            f"{latest} SELECT MAX({counted}) AS top FROM latest"
            " WHERE COALESCE(status, 'ok') = 'ok'",
        )
        top = top_rows[0]["top"] if top_rows else None
        if top is None:
            return 1, []
        width = figures.bin_width(int(top), bins)
        counted_bins = await self._rows(
            "friend_histogram",
            f"""{latest}
            SELECT b, COUNT(*) AS n FROM (
                SELECT DIV({counted}, @width) AS b FROM latest
                WHERE COALESCE(status, 'ok') = 'ok'
            )
            GROUP BY b ORDER BY b""",
            bigquery.ScalarQueryParameter("width", "INT64", width),
        )
        return width, figures.bins(counted_bins)

    async def list_counts(self) -> ListCounts:
        """Each user's newest ok result, its list counted as truncated, incomplete, short."""
        columns = f"{_STATUS_COLUMNS}, following_count, truncated"
        counted = "COALESCE(friend_count, ARRAY_LENGTH(friend_names), 0)"
        rows = await self._rows(
            "list_counts",
            f"""WITH {self._latest(columns)},
            ok AS (
                SELECT COALESCE(truncated, FALSE) AS cut, following_count AS f,
                       {counted} AS n
                FROM latest WHERE COALESCE(status, 'ok') = 'ok'
            )
            SELECT COUNT(*) AS ok, COUNTIF(cut) AS truncated,
                   COUNTIF(cut AND (f IS NULL OR ABS(f - n) > 0.01 * f)) AS incomplete,
                   COUNTIF(NOT cut AND f - n > 0.01 * f) AS short
            FROM ok""",
        )
        r = {k: int(v or 0) for k, v in rows[0].items()}
        return ListCounts(r["ok"], r["truncated"], r["incomplete"], r["short"])

    async def failure_kinds(self, *, limit: int) -> list[tuple[str, int]]:
        """Each user's newest failed result, counted per error kind in BigQuery."""
        columns = f"{_STATUS_COLUMNS}, error"
        kinds = await self._rows(
            "failure_kinds",
            f"""WITH {self._latest(columns)}
            SELECT COALESCE(NULLIF(REGEXP_EXTRACT(error, r'^[^: ]*'), ''), '(none)') AS kind,
                   COUNT(*) AS n
            FROM latest WHERE status = 'failed'
            GROUP BY kind ORDER BY n DESC, kind LIMIT @limit""",
            bigquery.ScalarQueryParameter("limit", "INT64", figures.at_least_one(limit)),
        )
        return figures.failure_kinds(kinds)

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        """Each user's newest result, aggregated per plan partition and status in BigQuery."""
        sql = f"""
            WITH {self._latest(_STATUS_COLUMNS)},
            plan AS (
                SELECT user_id, ANY_VALUE(`partition`) AS part
                FROM {self._t(schema.PARTITIONS)} GROUP BY user_id
            )
            SELECT COALESCE(plan.part, l.`partition`, 0) AS part,
                   COALESCE(l.status, 'ok') AS status,
                   COUNT(*) AS users,
                   SUM(COALESCE(l.friend_count, ARRAY_LENGTH(l.friend_names), 0)) AS friends,
                   SUM(TIMESTAMP_DIFF(l.end_at, l.start_at, MICROSECOND)) / 1e6 AS seconds,
                   MIN(l.start_at) AS first_start, MAX(l.end_at) AS last_end,
                   COUNTIF(l.end_at >= @since) AS recent
            FROM latest AS l
            LEFT JOIN plan ON plan.user_id = l.user_id
            GROUP BY 1, 2
            ORDER BY 1, 2
        """
        param = bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)
        return [
            figures.status_summary(r) for r in await self._rows("partition_summary", sql, param)
        ]


async def _once(_what: str, step: Callable[[], Awaitable[T]]) -> T:
    """``again`` for a caller that retries the whole call itself: each step once."""
    return await step()
