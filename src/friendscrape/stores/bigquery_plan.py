"""The BigQuery store's users and plan: the streamed import (one load job and a MERGE),
counts, the NTILE plan and placing users imported after it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from friendscrape.models import PLAN_FACTS, Partition, PlanCut, User
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import paging, planning, rows
from friendscrape.stores.base import (
    IMPORT_BATCH,
    Again,
    ImportResult,
)
from friendscrape.stores.bigquery_base import NUM, ORDER, BigQueryBase, T
from friendscrape.stores.bigquery_lib import SchemaField, bigquery

_IMPORT_CHUNK = IMPORT_BATCH

JOB = "job"
"""The job's own facts, one row each (``platform``: the upstream its users are on). Made
by the first write that records one, not at open: a dataset of an older version has no
such table, and its readers read it as recording nothing."""
JOB_SCHEMA = (
    SchemaField("key", "STRING", mode="REQUIRED"),
    SchemaField("value", "STRING", mode="REQUIRED"),
)


async def _once(_what: str, step: Callable[[], Awaitable[T]]) -> T:
    """``again`` for a caller that retries the whole call itself: each step once."""
    return await step()


def page_weight_sql(page_size: int, count: str, max_friends: int | None) -> str:
    """SQL of a user's expected pages from its following count (the column ``count``):
    ceil(min(count, max_friends) / page size) + 1, a list stopping at ``max_friends``
    names however many it follows (None: no cap). CEIL of a division, not DIV: the local
    BigQuery-compatible server gave DIV(GREATEST(fc, 0) + 19, 20) as fc + 21, so a plan
    made there weighed users by their following counts instead of their pages."""
    names = f"GREATEST({count}, 0)"
    if max_friends is not None:
        # CASE, not LEAST: NULL (no count) stays NULL whatever an engine's LEAST does.
        names = f"CASE WHEN {names} > {int(max_friends)} THEN {int(max_friends)} ELSE {names} END"
    return f"CAST(CEIL({names} / {int(page_size)}) AS INT64) + 1"


def median_sql(value: str) -> str:
    """SQL of the median of ``value``: the 50th of 100 quantiles, not the middle of 2.
    The local BigQuery-compatible server answers APPROX_QUANTILES(x, 2)[OFFSET(1)] with
    the maximum (its offsets of that array run one ahead), so a plan by pages made there
    weighed every user without a count as the heaviest list; one ahead of 50 in 100 is
    still about the median."""
    return f"APPROX_QUANTILES({value}, 100)[OFFSET(50)]"


def weights_sql(users: str, page_size: int | None, max_friends: int | None, keep: str = "") -> str:
    """The CTEs (to follow ``WITH`` or a comma) ending in ``weights``: each user of the
    relation ``users`` (one row a user: ``user_id``, ``following_count`` and the columns
    ``keep`` names, each with a leading comma) with ``pages``, its expected pages as a
    plan by pages weighs it (``page_weight_sql``; the median of the known weights where
    its count is unknown, 1 when none is); ``page_size`` None: 1 each. The plan
    (``_by_pages_sql``), ``partition_pages`` and the claims' read weigh users by it."""
    if page_size is None:
        weight, median = "1", "SELECT 1 AS med"
    else:
        weight = page_weight_sql(page_size, "following_count", max_friends)
        median = f"SELECT COALESCE({median_sql('w')}, 1) AS med FROM w_known"
    return f"""w_known AS (SELECT user_id{keep}, {weight} AS w FROM {users}),
            w_median AS ({median}),
            weights AS (
                SELECT user_id{keep}, COALESCE(w, w_median.med) AS pages
                FROM w_known CROSS JOIN w_median
            )"""


def _record_cut_sql(table: str, cut: PlanCut) -> str:
    """The statements replacing the job facts that say how the plan was cut (run in the
    plan's transaction). Values are formatted in, as the plan's count is: each is a
    whole number or a balance name, never text from outside."""
    keys = ", ".join(f"'{key}'" for key in PLAN_FACTS)
    values = ", ".join(f"('{key}', '{value}')" for key, value in cut.facts().items())
    return f"""DELETE FROM {table} WHERE `key` IN ({keys});
            INSERT INTO {table} (`key`, `value`) VALUES {values};"""


class BigQueryPlan(BigQueryBase):
    """PlanStore's writes and PlanReads on BigQuery."""

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

    def _create_job_sync(self) -> None:
        table = bigquery.Table(self.location.table_id(JOB), schema=list(JOB_SCHEMA))
        self.client.create_table(table, exists_ok=True, retry=None, timeout=self._timeout())

    async def record_platform(self, platform: str) -> str:
        """Create the job table if missing, then insert the platform unless one is there
        (one MERGE: two first runs at once record one platform, the other reads it)."""
        await self._call("record_platform", self._create_job_sync)
        table = self._t(JOB)
        await self._rows(
            "record_platform",
            f"""
            MERGE {table} AS t
            USING (SELECT 'platform' AS `key`, @platform AS `value`) AS s
            ON t.`key` = s.`key`
            WHEN NOT MATCHED THEN INSERT (`key`, `value`) VALUES (s.`key`, s.`value`)
            """,
            bigquery.ScalarQueryParameter("platform", "STRING", platform),
        )
        found = await self._rows(
            "record_platform", f"SELECT `value` FROM {table} WHERE `key` = 'platform' LIMIT 1"
        )
        return str(found[0]["value"]) if found else platform

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

    async def following_counts_known(self) -> int:
        """Users (each id once) whose following count is known."""
        rows = await self._rows(
            "following_counts_known",
            f"SELECT COUNT(DISTINCT IF(following_count IS NULL, NULL, user_id)) AS n"
            f" FROM {self._t(schema.USERS)}",
        )
        return int(rows[0]["n"])

    def _users_once(self, keep: str = "") -> str:
        """SQL of each user once (``user_id``, ``following_count`` and ``keep``)."""
        return f"""SELECT user_id{keep}, MAX(following_count) AS following_count
                FROM {self._t(schema.USERS)} GROUP BY user_id"""

    def _by_pages_sql(self, count: int, page_size: int, max_friends: int | None) -> str:
        """Each user's partition cut by expected work (see SqlitePlan's ``_plan_by_pages``),
        computed in BigQuery: the weights' running sum over plan order, in ``count``
        equal shares, numbered densely."""
        return f"""
            WITH u AS ({self._users_once(f", ANY_VALUE({NUM}) AS num")}),
            {weights_sql("u", page_size, max_friends, ", num")},
            s AS (
                SELECT user_id,
                       ROW_NUMBER() OVER (ORDER BY {ORDER}) AS position,
                       SUM(pages) OVER (ORDER BY {ORDER} ROWS UNBOUNDED PRECEDING) - pages
                           AS before,
                       SUM(pages) OVER () AS total
                FROM weights
            )
            SELECT user_id,
                   DENSE_RANK() OVER (
                       ORDER BY LEAST({int(count)}, DIV(before * {int(count)}, total) + 1)
                   ) AS `partition`,
                   position
            FROM s
        """

    async def plan_partitions(
        self, count: int, *, page_size: int | None = None, max_friends: int | None = None
    ) -> list[Partition]:
        """Replace the plan with NTILE(count) over users in plan order, computed in BigQuery
        (with ``page_size``: cut by expected pages instead, ``_by_pages_sql``)."""
        planning.check_count(count)
        ntile = f"""
            WITH u AS (
                SELECT DISTINCT user_id, {NUM} AS num FROM {self._t(schema.USERS)}
            )
            SELECT user_id,
                   NTILE({int(count)}) OVER (ORDER BY {ORDER}) AS `partition`,
                   ROW_NUMBER() OVER (ORDER BY {ORDER}) AS position
            FROM u"""
        select = ntile
        if page_size is not None:
            select = self._by_pages_sql(count, page_size, max_friends)
        # Rows replaced inside the table ``open`` created from the declared schema, in one
        # transaction: CREATE OR REPLACE TABLE ... AS SELECT would drop the REQUIRED modes,
        # and readers would see no plan between a DELETE and an INSERT run apart.
        table = self._t(schema.PARTITIONS)
        await self._call("plan_partitions", self._create_job_sync)
        sql = f"""
            BEGIN TRANSACTION;
            DELETE FROM {table} WHERE TRUE;
            INSERT INTO {table} (user_id, `partition`, position)
            {select};
            {_record_cut_sql(self._t(JOB), PlanCut.of(page_size, max_friends))}
            COMMIT TRANSACTION;
        """
        # The count is formatted in (an int, checked above): the local server does not
        # pass query parameters into a multi-statement script.
        await self._rows("plan_partitions", sql)
        plan = await self.partitions()
        self._log.info("store.plan", partitions=len(plan), users=sum(p.user_count for p in plan))
        return plan

    async def partition_pages(
        self, page_size: int | None, *, max_friends: int | None = None
    ) -> dict[int, int]:
        """Each partition's expected pages (its users with ``page_size`` None), weighed as
        ``_by_pages_sql`` weighs them (``weights_sql``), in one query."""
        sql = f"""
            WITH u AS ({self._users_once()}),
            {weights_sql("u", page_size, max_friends)}
            SELECT p.`partition` AS part, SUM(wt.pages) AS pages
            FROM {self._t(schema.PARTITIONS)} AS p
            JOIN weights AS wt ON wt.user_id = p.user_id
            GROUP BY part
        """
        found = await self._rows("partition_pages", sql)
        return {int(r["part"]): int(r["pages"]) for r in found}

    async def partitions(self) -> list[Partition]:
        """The stored plan, by partition number; each range's ends in plan order (users
        placed after the plan sit past every position, so positions cannot give them)."""
        sql = f"""
            WITH k AS (
                SELECT `partition` AS number, user_id, {NUM} AS num
                FROM {self._t(schema.PARTITIONS)}
            ),
            ranked AS (
                SELECT number, user_id,
                       ROW_NUMBER() OVER (PARTITION BY number ORDER BY {ORDER}) AS up,
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
