"""What status, report and export read from BigQuery: results, the graph and its views,
and the figures counted in the query."""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
)
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc

from friendscrape.models import PLAN_FACTS, FriendList, PlanCut
from friendscrape.stores import bigquery_graph as graph
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import figures, rows
from friendscrape.stores.base import (
    EdgeList,
    ListCounts,
    NodeRow,
    RunSpan,
    StatusRow,
    StatusSummary,
)
from friendscrape.stores.bigquery_base import (
    COUNTED,
    COUNTED_NAMES,
    NUM,
    ORDER,
    STATUS_COLUMNS,
    STATUS_COLUMNS_NAMES,
)
from friendscrape.stores.bigquery_lib import bigquery
from friendscrape.stores.bigquery_plan import JOB
from friendscrape.stores.bigquery_waves import BigQueryWaves

LATEST_VIEW = "latest_friends"

_LATEST_COLUMNS = (
    "user_id, screen_name, friend_count, friend_names, start_at, end_at, friend_ids,"
    " following_count, truncated, status, error, source, `partition`, wave"
)


class BigQueryReads(BigQueryWaves):
    """ReadStore on BigQuery: every read keeps each user's newest row."""

    async def results(self) -> AsyncIterator[FriendList]:
        """Every user's newest result with total attempts, in plan order, page by page."""
        columns = (
            "user_id, screen_name, friend_count, friend_names, start_at, end_at, friend_ids,"
            " following_count, truncated, status, error, source, `partition`"
        )
        sql = f"""
            WITH {self._latest(columns, lists=True)}
            SELECT * EXCEPT (attempts, total_attempts), total_attempts AS attempts, {NUM} AS num
            FROM latest
            ORDER BY {ORDER}
        """

        async with contextlib.aclosing(self._stream("results", sql, ())) as streamed:
            async for row in streamed:
                yield rows.friend_list(row)

    def _graph_latest(self) -> str:
        return self._latest(
            "user_id, screen_name, friend_count, friend_names, friend_ids, following_count,"
            " truncated, status, source, `partition`, end_at",
            lists=True,
        )

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
        known: list[bool] = []
        async with contextlib.aclosing(self._stream("edges", sql, [param])) as streamed:
            async for row in streamed:
                if current is not None and current.source_id != row["source_id"]:
                    yield current
                    current = None
                if current is None:
                    known = []
                    current = EdgeList(
                        row["source_id"], row["source_name"] or "", row["platform"], [], [], known
                    )
                current.names.append(row["target_name"])
                current.targets.append(row["target_id"] or "")
                known.append(bool(row["known"]))
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
        async with contextlib.aclosing(self._stream("nodes", sql, [param])) as streamed:
            async for row in streamed:
                yield rows.node_row(row)

    def _create_views(self, client: Any, timeout: float) -> None:
        """The graph as views users can query in SQL: `edges` and `nodes`, and
        `latest_friends` (each user's newest result, ``user_friends``-shaped, its list
        resolved when a later wave kept none). A view of an older version is replaced."""
        users, plan = self._t(schema.USERS), self._t(schema.PARTITIONS)
        latest = self._latest(_LATEST_COLUMNS, lists=True)
        for name, select in (
            (graph.EDGES_VIEW, graph.edges_select(self._graph_latest(), users, plan, keyed=True)),
            (graph.NODES_VIEW, graph.nodes_select(self._graph_latest(), users, plan)),
            (
                LATEST_VIEW,
                (
                    f"WITH {latest} SELECT * EXCEPT (attempts, total_attempts, row_key),"
                    " total_attempts AS attempts, 0 AS num FROM latest"
                ),
            ),
        ):
            view = bigquery.Table(self.location.table_id(name))
            view.view_query = f"SELECT * EXCEPT (num) FROM ({select})"
            made = client.create_table(view, exists_ok=True, retry=None, timeout=timeout)
            if getattr(made, "view_query", None) not in (None, view.view_query):
                made.view_query = view.view_query
                client.update_table(made, ["view_query"], retry=None, timeout=timeout)

    async def _counted(self) -> tuple[str, str]:
        """The columns and the friend-count expression figures read: friend_count alone,
        unless some row lacks it (written by another program), where its list is counted
        and the query scans every list (one warning says so and how to fill them in)."""
        if self._uncounted is None:
            found = await self._rows(
                "uncounted",
                f"SELECT COUNTIF(friend_count IS NULL) AS n FROM {self._t(schema.RESULTS)}",
            )
            self._uncounted = int(found[0]["n"] or 0) if found else 0
            if self._uncounted:
                self._log.warning(
                    "store.friend_counts_missing",
                    rows=self._uncounted,
                    hint="figures scan every stored list until they are filled in: "
                    "UPDATE user_friends SET friend_count = ARRAY_LENGTH(friend_names) "
                    "WHERE friend_count IS NULL",
                )
        if self._uncounted:
            return STATUS_COLUMNS_NAMES, COUNTED_NAMES
        return STATUS_COLUMNS, COUNTED

    async def status_rows(self) -> list[StatusRow]:
        """Each user's newest result's figures."""
        wave = await self.current_wave()  # status counts the current wave's results
        columns, counted = await self._counted()
        sql = f"""
            WITH {self._latest(columns, wave=wave)}
            SELECT user_id, `partition` AS part, status,
                   {counted} AS friend_count,
                   start_at, end_at, {NUM} AS num
            FROM latest
            ORDER BY {ORDER}
        """
        return [figures.status_row(r) for r in await self._rows("status_rows", sql)]

    async def finished_counts(self, *, bucket: int) -> list[tuple[int, int, int]]:
        """Each user's newest result, counted per plan partition and end-time bucket."""
        wave = await self.current_wave()  # status counts the current wave's results
        sql = f"""
            WITH {self._latest(STATUS_COLUMNS, wave=wave)},
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
        """Users whose current wave's result is ok, counted per friend-count bin in BigQuery."""
        columns, counted = await self._counted()
        wave = await self.current_wave()  # the report counts the current wave, as status
        latest = f"WITH {self._latest(columns, wave=wave)}"
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
        """Each user's ok result of the current wave, its list counted as truncated,
        incomplete, short."""
        columns, counted = await self._counted()
        columns = f"{columns}, following_count, truncated"
        wave = await self.current_wave()  # the report counts the current wave, as status
        rows = await self._rows(
            "list_counts",
            f"""WITH {self._latest(columns, wave=wave)},
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
        """Each user's failed result of the current wave, counted per error kind in BigQuery."""
        columns = f"{STATUS_COLUMNS}, error"
        wave = await self.current_wave()  # the report counts the current wave, as status
        kinds = await self._rows(
            "failure_kinds",
            f"""WITH {self._latest(columns, wave=wave)}
            SELECT COALESCE(NULLIF(REGEXP_EXTRACT(error, r'^[^: ]*'), ''), '(none)') AS kind,
                   COUNT(*) AS n
            FROM latest WHERE status = 'failed'
            GROUP BY kind ORDER BY n DESC, kind LIMIT @limit""",
            bigquery.ScalarQueryParameter("limit", "INT64", figures.at_least_one(limit)),
        )
        return figures.failure_kinds(kinds)

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        """Each user's newest result, aggregated per plan partition and status in BigQuery."""
        wave = await self.current_wave()  # status counts the current wave's results
        columns, counted = await self._counted()
        sql = f"""
            WITH {self._latest(columns, wave=wave)},
            plan AS (
                SELECT user_id, ANY_VALUE(`partition`) AS part
                FROM {self._t(schema.PARTITIONS)} GROUP BY user_id
            )
            SELECT COALESCE(plan.part, l.`partition`, 0) AS part,
                   COALESCE(l.status, 'ok') AS status,
                   COUNT(*) AS users,
                   SUM({counted}) AS friends,
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

    async def run_spans(self) -> list[RunSpan]:
        """Each run's first and last sample per partition, in BigQuery."""
        found = await self._sample_rows(
            "run_spans",
            f"""
            SELECT `partition` AS part, run_id, MIN(`at`) AS first_at, MAX(`at`) AS last_at,
                   COUNTIF(`final`) > 0 AS final
            FROM {self._t(schema.SAMPLES)}
            GROUP BY part, run_id
            ORDER BY part, first_at
            """,
        )
        return [figures.run_span(r) for r in found]

    async def _job_facts(self, what: str, keys: tuple[str, ...]) -> dict[str, str]:
        """The job table's rows named ``keys``; none when there is no job table (a
        dataset of an older version, opened read-only or not): the platform's and the
        plan's are read alike."""

        def run() -> dict[str, str]:
            listed = ", ".join(f"'{key}'" for key in keys)  # names from the code alone
            sql = f"SELECT `key`, `value` FROM {self._t(JOB)} WHERE `key` IN ({listed})"
            try:
                return {str(row["key"]): str(row["value"]) for row in self._query_sync(sql)}
            except gexc.NotFound:
                return {}

        return await self._call(what, run)

    async def job_platform(self) -> str | None:
        """The job table's platform row; None when there is none, or no job table."""
        return (await self._job_facts("job_platform", ("platform",))).get("platform")

    async def plan_cut(self) -> PlanCut | None:
        """The job table's plan rows; None when there are none, or no job table."""
        return PlanCut.from_facts(await self._job_facts("plan_cut", PLAN_FACTS))

    async def source_counts(self) -> list[tuple[str, int]]:
        """Each user's newest result, counted per source in BigQuery."""
        sql = f"""
            WITH {self._latest(f"{STATUS_COLUMNS}, source")}
            SELECT COALESCE(source, '') AS source, COUNT(*) AS n FROM latest
            GROUP BY source ORDER BY n DESC, source
        """
        return figures.source_counts(await self._rows("source_counts", sql))
