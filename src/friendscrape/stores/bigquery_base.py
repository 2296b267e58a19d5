"""The BigQuery store's plumbing: its settings, the client, one blocking call run in a
thread and its failure classified, queries and their pages, and the CTEs of each user's
newest result that every read of results starts from."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import (
    AsyncGenerator,
    Callable,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

import requests
import structlog
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.exceptions import GoogleAuthError

from friendscrape.errors import (
    StoreConflictError,
    StoreError,
    StoreTransientError,
    StoreUnavailableError,
)
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import paging, rows
from friendscrape.stores.bigquery_lib import bigquery
from friendscrape.stores.bigquery_write import StorageWriter
from friendscrape.stores.config import BigQueryConfig

T = TypeVar("T")

log = structlog.get_logger(__name__)

_RESULT_PAGE = 200
"""Rows a page of a streamed query (results, edges, nodes). A result row holds a user's
whole friend list, some 150 KB as Python objects at 550 friends, and a page is held
twice (as the client's rows and as ours) with the next one read ahead: 1,000 rows a page
took the export of a 3,000-user job to 420 MB, 200 rows to 175 MB, whatever the job's
size past 400 users."""


def is_conflict(exc: BaseException) -> bool:
    """Mutating DML on one table at once: BigQuery aborts the later statement ("Could not
    serialize access to table ... due to concurrent update") before it changes anything."""
    text = str(exc)
    return isinstance(exc, gexc.GoogleAPIError) and (
        "Could not serialize access" in text or "concurrent update" in text
    )


def is_transient(exc: BaseException) -> bool:
    """Errors a later attempt may not see: 5xx, 429, rate limits, lost connections."""
    if isinstance(exc, gexc.ServerError | gexc.TooManyRequests):
        return True
    if isinstance(exc, gexc.Forbidden):
        return any(e.get("reason") == "rateLimitExceeded" for e in exc.errors or ())
    if is_conflict(exc):
        return True
    return isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | TimeoutError
    )


def _describe(exc: BaseException) -> str:
    """An error as one short line for messages: its type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


# Plan order as in partition.py: ids of up to 19 ASCII digits that fit INT64 sort as
# numbers, before every other id, which sorts as text.
NUM = "IF(REGEXP_CONTAINS(user_id, r'^[0-9]{1,19}$'), SAFE_CAST(user_id AS INT64), NULL)"

ORDER = "num IS NULL, num, user_id"

# Backquoted: `partition`, `at` and `final` are reserved words to some SQL engines.
SAMPLE_COLUMNS = ", ".join(f"`{name}`" for name in rows.SAMPLE_COLUMNS)

STATUS_COLUMNS = "user_id, `partition`, status, friend_count, start_at, end_at"
# BigQuery bills a query by the columns it names, whatever rows it reads: figures that name
# friend_names scan every stored list (some 20 GB at 3.6M users). friendscrape writes
# friend_count on every row, so figures read it alone; only a table where another program
# left friend_count NULL needs the lists counted (STATUS_COLUMNS_NAMES, COUNTED_NAMES).
STATUS_COLUMNS_NAMES = f"{STATUS_COLUMNS}, friend_names"
COUNTED = "COALESCE(friend_count, 0)"
COUNTED_NAMES = "COALESCE(friend_count, ARRAY_LENGTH(friend_names), 0)"


class BigQueryBase:
    """The client and queries every part of the BigQuery store runs on."""

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
        # Rows without friend_count (None: not counted yet); see COUNTED_NAMES.
        self._uncounted: int | None = None
        self._log = log.bind(store="bigquery", dataset=f"{location.project}.{location.dataset}")

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
            if is_conflict(exc):
                msg = f"BigQuery {what} aborted by a concurrent update: {_describe(exc)}"
                raise StoreConflictError(msg) from exc
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

    async def _dml(self, what: str, sql: str, *params: Any) -> int | None:
        """Run one mutating statement: the rows it changed, as the service tells them
        with its answer (None when it does not)."""

        def run() -> int | None:
            config = bigquery.QueryJobConfig(query_parameters=list(params))
            timeout = self._timeout()
            job = self.client.query(
                sql, job_config=config, retry=None, job_retry=None, timeout=timeout
            )
            result = job.result(timeout=timeout, retry=None, job_retry=None)
            # The answer to the query carries the count, or else the finished job's
            # statistics do (the local server gives it there only).
            changed = getattr(result, "num_dml_affected_rows", None)
            if changed is None:
                changed = getattr(job, "num_dml_affected_rows", None)
            return int(changed) if changed is not None else None

        return await self._call(what, run)

    def _t(self, name: str) -> str:
        return self.location.table(name)

    def _latest(self, columns: str, *, lists: bool = False, wave: int = 1) -> str:
        """CTEs ``tries`` (one row per insert) and ``latest`` (each user's newest row).

        ``latest.total_attempts`` sums attempts over a user's distinct rows. Rows of the
        original deployment have no row_key or attempts: each counts as one try. With
        ``lists``, a newest row that kept no list (``same_list``: equal to the user's
        previous one, see bigquery_waves.py) reads the user's newest list that was kept.
        With ``wave`` past the first, only that wave's rows count (status and report).
        """
        kept = ", same_list" if lists else ""
        newest = "latest" if not lists else "newest"
        resolved = ""
        if lists:
            picked = ", ".join(
                f"IF(COALESCE(n.same_list, FALSE), k.{c}, n.{c}) AS {c}"
                if c in {"friend_names", "friend_ids"}
                else f"n.{c}"
                for c in (c.strip() for c in columns.split(","))
            )
            resolved = f""",
            kept AS (
                SELECT user_id, friend_names, friend_ids FROM tries
                WHERE NOT COALESCE(same_list, FALSE)
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id ORDER BY end_at DESC, row_key DESC
                ) = 1
            ),
            latest AS (
                SELECT {picked}, n.row_key, n.attempts, n.total_attempts
                FROM newest AS n LEFT JOIN kept AS k ON k.user_id = n.user_id
            )"""
        return f"""
            tries AS (
                SELECT {columns}, row_key, attempts{kept}
                FROM {self._t(schema.RESULTS)}
                WHERE {"TRUE" if wave <= 1 else f"wave = {wave:d}"}
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY COALESCE(row_key, CONCAT(user_id, '@', CAST(start_at AS STRING)))
                    ORDER BY end_at DESC
                ) = 1
            ),
            {newest} AS (
                SELECT *, SUM(COALESCE(attempts, 1)) OVER (PARTITION BY user_id) AS total_attempts
                FROM tries
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id ORDER BY end_at DESC, row_key DESC
                ) = 1
            ){resolved}
        """

    async def _stream(
        self, what: str, sql: str, params: Sequence[Any]
    ) -> AsyncGenerator[Any, None]:
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

    async def _sample_rows(self, what: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a query on run_samples; none from a store made before that table (it
        is created by the first run, and a read-only open creates nothing)."""

        def run() -> list[dict[str, Any]]:
            try:
                return [dict(row.items()) for row in self._query_sync(sql, params)]
            except gexc.NotFound:
                return []

        return await self._call(what, run)
