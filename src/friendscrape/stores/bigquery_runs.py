"""What a run reads and holds on BigQuery besides its results: pending users, looked-up
ids, the partition's lease (a compare-and-swap: BigQuery has no row locks) and run
samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from friendscrape.errors import StoreTransientError
from friendscrape.models import UserPage
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import figures, paging, rows
from friendscrape.stores.base import (
    ClaimRead,
    Lease,
    LeaseHolder,
    RunSample,
    SampleBucket,
    now_utc,
)
from friendscrape.stores.bigquery_base import SAMPLE_COLUMNS
from friendscrape.stores.bigquery_lib import bigquery
from friendscrape.stores.bigquery_plan import weights_sql
from friendscrape.stores.bigquery_waves import BigQueryWaves

# Takes the first candidate partition with no live lease of another run (its holder
# lapsed, or is among @gone, "partition/run" of holders found dead): one statement. A
# row of another run is rewritten only when it lapsed or the worker found that holder
# gone (as acquire_lease's take does): under 10 workers on the local server, a take without that
# condition once rewrote a live holder's row, and both collected the partition.
_CLAIM_SQL = """
MERGE {leases} AS t
USING (
    SELECT c AS part FROM UNNEST(@candidates) AS c WITH OFFSET AS o
    WHERE NOT EXISTS (
        SELECT 1 FROM {leases} AS l
        WHERE l.`partition` = c AND l.run_id != @run_id AND l.expires_at > @now
          AND CONCAT(CAST(l.`partition` AS STRING), '/', l.run_id) NOT IN UNNEST(@gone)
    )
    ORDER BY o
    LIMIT 1
) AS s
ON t.`partition` = s.part
WHEN MATCHED AND (
    t.run_id = @run_id
    OR t.expires_at <= @now
    OR CONCAT(CAST(t.`partition` AS STRING), '/', t.run_id) IN UNNEST(@gone)
) THEN UPDATE SET
    host = @host, pid = @pid, run_id = @run_id,
    acquired_at = @now, heartbeat_at = @now, expires_at = @expires
WHEN NOT MATCHED THEN INSERT
    (`partition`, host, pid, run_id, acquired_at, heartbeat_at, expires_at)
    VALUES (s.part, @host, @pid, @run_id, @now, @now, @expires)
"""


class BigQueryRuns(BigQueryWaves):
    """Pending users, leases and run samples on BigQuery."""

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

    async def claim_lease(
        self, run_id: str, ttl: float, candidates: Sequence[int], gone: Mapping[int, str]
    ) -> Lease | None:
        """The first of ``candidates`` no other live run holds, taken by one ``MERGE``
        that picks it as it runs (BigQuery runs mutating statements on a table one after
        another, or aborts one that conflicts, retried): a take no longer loses to a
        worker that took the partition after this one's read. The lease row is then read
        back, as ``acquire_lease`` does: should two takes of one partition still both
        land, the row that wins there wins here, and the other run gives its row up."""
        if not candidates:
            return None
        now = now_utc()
        template = Lease(partition=0, run_id=run_id, ttl=ttl)
        changed = await self._dml(
            "claim",
            _CLAIM_SQL.format(leases=self._t(schema.LEASES)),
            *self._lease_params(template, now)[1:],
            bigquery.ArrayQueryParameter("candidates", "INT64", list(candidates)),
            bigquery.ArrayQueryParameter(
                "gone", "STRING", [f"{part}/{holder}" for part, holder in gone.items()]
            ),
        )
        if changed == 0:
            return None
        found = await self._rows(
            "claim",
            f"""
            SELECT `partition` AS part, host, pid, run_id, acquired_at, expires_at
            FROM {self._t(schema.LEASES)}
            WHERE `partition` IN (
                SELECT `partition` FROM {self._t(schema.LEASES)}
                WHERE run_id = @run_id AND acquired_at = @now)
            ORDER BY `partition`, acquired_at, run_id
            """,
            bigquery.ScalarQueryParameter("run_id", "STRING", run_id),
            bigquery.ScalarQueryParameter("now", "TIMESTAMP", now),
        )
        for part, holder in rows.leases(found).items():
            lease = Lease(partition=part, run_id=run_id, ttl=ttl)
            if holder.run_id == run_id:
                self._log.info("store.lease_taken", partition=part, claimed=True)
                return lease
            await self.release_lease(lease)  # two takes landed: the other row wins
        return None

    async def renew_lease(self, lease: Lease) -> bool:
        """Extend our lease; False when another run's row now wins.

        One statement when the service says how many rows it changed: our row is the
        partition's only one once taken (a take-over rewrites it to the new holder's run,
        a release deletes it), so changing it means we still hold the lease. Otherwise
        the lease rows are read again, as when it was taken.
        """
        now = now_utc()
        changed = await self._dml(
            "lease",
            f"""
            UPDATE {self._t(schema.LEASES)}
            SET heartbeat_at = @now, expires_at = @expires
            WHERE `partition` = @partition AND run_id = @run_id
            """,
            *self._lease_params(lease, now)[:1],
            *self._lease_params(lease, now)[3:],
        )
        if changed is not None:
            return changed > 0
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

    async def record_sample(self, sample: RunSample) -> None:
        """Append one sample with a DML insert (readable at once, unlike streaming)."""
        values = rows.sample_values(sample)
        marks = ", ".join(f"@{name}" for name in values)
        await self._rows(
            "record_sample",
            f"INSERT INTO {self._t(schema.SAMPLES)} ({SAMPLE_COLUMNS}) VALUES ({marks})",
            *(
                bigquery.ScalarQueryParameter(field.name, field.field_type, values[field.name])
                for field in schema.SAMPLES_SCHEMA
            ),
        )

    async def latest_samples(self) -> dict[int, RunSample]:
        """Each partition's newest sample."""
        found = await self._sample_rows(
            "latest_samples",
            f"""
            SELECT {SAMPLE_COLUMNS} FROM {self._t(schema.SAMPLES)}
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
            f" {self._t(schema.RESOLVED)} AS x WHERE x.user_id = u.user_id) AS resolved_id,"
            f" r.list_hash AS prev_hash, r.status AS prev_status,"
            f" {self.current_sql()} AS current_wave",
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
        self.remember_previous(found)
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

    async def pending_partitions(self, *, retry_failed: bool) -> list[int]:
        """Partitions with pending users, in one query (GROUP BY over the plan)."""
        sql = self._pending_sql("DISTINCT p.`partition` AS part", "ORDER BY part", every=True)
        found = await self._rows(
            "pending_partitions",
            sql,
            bigquery.ScalarQueryParameter("retry_failed", "BOOL", retry_failed),
        )
        return [int(r["part"]) for r in found]

    async def claim_view(self, *, retry_failed: bool) -> tuple[list[int], dict[int, LeaseHolder]]:
        """Pending partitions and every lease row in one query (a UNION ALL of both):
        a claim round is one statement, not two."""
        read = await self._claim_read("claim_view", retry_failed, None, None)
        return read.pending, read.leases

    async def claim_read(
        self, *, retry_failed: bool, page_size: int | None, max_friends: int | None = None
    ) -> ClaimRead:
        """``claim_view`` with each pending partition's expected pages left and pending
        users, in the same query: the pending users it reads anyway, summed and counted
        (a partition claimed from it is not counted again as its run starts)."""
        return await self._claim_read("claim_read", retry_failed, page_size or 0, max_friends)

    async def _claim_read(
        self, op: str, retry_failed: bool, page_size: int | None, max_friends: int | None
    ) -> ClaimRead:
        """``page_size`` None: no pages summed; 0: pending users counted."""
        lease_row = (
            "CAST(NULL AS STRING) AS host, CAST(NULL AS INT64) AS pid,"
            " CAST(NULL AS STRING) AS run_id, CAST(NULL AS TIMESTAMP) AS acquired_at,"
            " CAST(NULL AS TIMESTAMP) AS expires_at"
        )
        ctes, joins = "", ""
        if page_size is None:
            select = f"DISTINCT 'pending' AS kind, p.`partition` AS part, {lease_row}"
            select += ", CAST(NULL AS INT64) AS pages, CAST(NULL AS INT64) AS users"
            group = ""
        else:
            weight = "1"
            if page_size:
                # As partition_pages weighs users: the median where no count is known.
                weight = "wt.pages"
                ctes = f",\n{weights_sql('u', page_size, max_friends)}"
                joins = "JOIN weights AS wt ON wt.user_id = p.user_id"
            select = f"'pending' AS kind, p.`partition` AS part, {lease_row}"
            select += f", SUM({weight}) AS pages, COUNT(*) AS users"
            group = "GROUP BY part"
        tail = f"""
            {group}
            UNION ALL
            SELECT 'lease' AS kind, `partition` AS part, host, pid, run_id, acquired_at,
                expires_at, CAST(NULL AS INT64) AS pages, CAST(NULL AS INT64) AS users
            FROM {self._t(schema.LEASES)}
            ORDER BY kind, part, acquired_at, run_id
        """
        found = await self._rows(
            op,
            self._pending_sql(select, tail, every=True, ctes=ctes, joins=joins),
            bigquery.ScalarQueryParameter("retry_failed", "BOOL", retry_failed),
        )
        pending = [r for r in found if r["kind"] == "pending"]
        held = rows.leases(r for r in found if r["kind"] == "lease")
        left = {int(r["part"]): int(r["pages"]) for r in pending if r["pages"] is not None}
        users = {int(r["part"]): int(r["users"]) for r in pending if r["users"] is not None}
        return ClaimRead([int(r["part"]) for r in pending], held if pending else {}, left, users)

    def _pending_sql(
        self, select: str, tail: str, *, every: bool = False, ctes: str = "", joins: str = ""
    ) -> str:
        return f"""
            WITH {self._latest("user_id, status, start_at, end_at, list_hash, wave")},
            u AS (
                SELECT user_id, screen_name, following_count FROM {self._t(schema.USERS)}
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id) = 1
            ){ctes}
            SELECT {select}
            FROM {self._t(schema.PARTITIONS)} AS p
            JOIN u ON u.user_id = p.user_id
            LEFT JOIN latest AS r ON r.user_id = p.user_id
            {joins}
            WHERE {"TRUE" if every else "p.`partition` = @partition"}
              AND (r.user_id IS NULL OR COALESCE(r.wave, 1) < {self.current_sql()}
                   OR (@retry_failed AND r.status = 'failed'))
              {tail}
        """
