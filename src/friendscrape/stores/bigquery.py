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

This module opens the dataset (and creates its tables and views); the store's parts are
by role: ``bigquery_base`` (client and queries), ``bigquery_plan`` (users and plan),
``bigquery_runs`` (pending users, leases, samples), ``bigquery_save`` (results written),
``bigquery_read`` (results, graph and figures). What is not SQL (rows to records,
paging, figures) is shared with SQLite: ``rows``, ``paging``, ``figures``, ``planning``.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    Sequence,
)
from typing import Any

from google.api_core import exceptions as gexc

from friendscrape.errors import StoreError, StoreTransientError, StoreUnavailableError
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores.bigquery_lib import bigquery
from friendscrape.stores.bigquery_plan import BigQueryPlan
from friendscrape.stores.bigquery_read import BigQueryReads
from friendscrape.stores.bigquery_runs import BigQueryRuns
from friendscrape.stores.bigquery_save import BigQuerySave, StoreInsertError
from friendscrape.stores.config import BigQueryConfig

__all__ = ["BigQueryConfig", "BigQueryStore", "StoreInsertError"]


class BigQueryStore(BigQueryPlan, BigQueryRuns, BigQuerySave, BigQueryReads):
    """The Store protocol on BigQuery; build with ``from_url``."""

    @classmethod
    def from_url(
        cls, url: str, config: BigQueryConfig, *, read_only: bool = False
    ) -> BigQueryStore:
        """A store for ``bigquery://PROJECT/DATASET`` (UsageError when the URL is bad)."""
        return cls(schema.parse_url(url), config, read_only=read_only)

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
                if name == schema.RESULTS:
                    table.clustering_fields = ["wave"]  # a wave's read scans that wave
                client.create_table(table, exists_ok=True, retry=None, timeout=timeout)
                continue
            self._check_columns(client, table, fields)
            if name == schema.RESULTS and not table.clustering_fields:
                self._cluster_by_wave(client, table_id)
        self._create_views(client, timeout)

    def _cluster_by_wave(self, client: Any, table_id: str) -> None:
        """Cluster a results table made before waves by wave: a change of its metadata
        only (free), so the rows written from now on are clustered, and a later wave's
        read skips them by wave; rows already there are not rewritten (docs/waves.md says
        how to rewrite them). Not done (one event) when BigQuery refuses it: the reads
        are the same, only their scans are larger."""
        timeout = self._timeout()
        try:
            table = client.get_table(table_id, retry=None, timeout=timeout)  # its new etag
            if table.clustering_fields:
                return  # another process did it meanwhile
            table.clustering_fields = ["wave"]
            client.update_table(table, ["clustering_fields"], retry=None, timeout=timeout)
        except gexc.GoogleAPIError as exc:
            self._log.warning("store.clustering_skipped", table=table_id, error=str(exc))
            return
        self._log.info("store.clustered", table=table_id, fields=["wave"])

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
