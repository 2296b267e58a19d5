"""What status, report and export read from SQLite: results, the graph, and the figures
counted in SQL (most from the indexes that hold them, not the wide rows)."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime

from friendscrape.models import PLAN_FACTS, FriendList, PlanCut
from friendscrape.stores import figures, rows, sqlite_keys
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores import sqlite_waves as waves
from friendscrape.stores.base import (
    EdgeList,
    ListCounts,
    NodeRow,
    RunSpan,
    StatusRow,
    StatusSummary,
)
from friendscrape.stores.sqlite_base import SqliteBase, table_names, to_sql
from friendscrape.stores.sqlite_match import KeyMap

_RESULT_COLUMNS = (
    "user_id, screen_name, status, source, partition, start_at, end_at, friend_names, "
    "friend_ids, following_count, truncated, error, attempts"
)

# A failed user's error starts with its kind ("timeout after retries: ...", "http_404:
# ...", "parse: ..."): the text before the first colon or space.
_ERROR_KIND = """CASE WHEN error IS NULL OR error = '' THEN '(none)' ELSE substr(error, 1,
    min(CASE instr(error, ':') WHEN 0 THEN length(error) + 1 ELSE instr(error, ':') END,
        CASE instr(error, ' ') WHEN 0 THEN length(error) + 1 ELSE instr(error, ' ') END) - 1)
    END"""


class SqliteReads(SqliteBase):
    """ReadStore on SQLite."""

    async def results(self) -> AsyncIterator[FriendList]:
        sql = f"SELECT {_RESULT_COLUMNS} FROM user_friends ORDER BY {{order}}"
        async with contextlib.aclosing(self._stream("read results", sql)) as streamed:
            async for row in streamed:
                yield rows.friend_list(row)

    async def edge_lists(self, *, partition: int | None = None) -> AsyncIterator[EdgeList]:
        query = await self._call("read edges", graph.edges_query)
        if isinstance(query.key_map, KeyMap):
            # Lists left unmatched at save: matched with the filter of the job's keys.
            keys = sqlite_keys.ExportKeys(query.key_map.path, query.key_map)
            query = dataclasses.replace(query, key_map=keys)
        params = {**query.params, "part": partition}
        streamed = self._stream("read edges", query.sql, params, page=graph.EDGE_PAGE)
        try:
            async with contextlib.aclosing(streamed):
                async for row in streamed:
                    yield graph.edge_list(row, query)
        finally:
            query.key_map.close()

    async def nodes(self, *, partition: int | None = None) -> AsyncIterator[NodeRow]:
        streamed = self._stream("read nodes", graph.NODES_SQL, {"part": partition})
        async with contextlib.aclosing(streamed):
            async for row in streamed:
                yield rows.node_row(row)

    async def status_rows(self) -> list[StatusRow]:
        def run(conn: sqlite3.Connection) -> list[StatusRow]:
            found = conn.execute(
                f"""SELECT f.user_id, COALESCE(u.partition, f.partition, 0) AS part,
                          f.status, f.friend_count, f.start_at, f.end_at
                   FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
                   WHERE {waves.in_current(conn)}"""
            ).fetchall()
            return [figures.status_row(r) for r in found]

        return await self._call("read status", run)

    async def finished_counts(self, *, bucket: int) -> list[tuple[int, int, int]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, int, int]]:
            found = conn.execute(
                f"""SELECT COALESCE(u.partition, f.partition, 0) AS part,
                          CAST(strftime('%s', f.end_at) AS INTEGER) / ? AS b, COUNT(*) AS n
                   FROM user_friends f LEFT JOIN users u ON u.user_id = f.user_id
                   WHERE {waves.in_current(conn)}
                   GROUP BY part, b ORDER BY part, b""",
                (figures.at_least_one(bucket),),
            ).fetchall()
            return figures.finished_counts(found)

        return await self._call("read figures", run)

    async def friend_histogram(self, *, bins: int) -> tuple[int, list[tuple[int, int]]]:
        def run(conn: sqlite3.Connection) -> tuple[int, list[tuple[int, int]]]:
            wave = waves.in_current(conn)  # the current wave's results, as status counts
            top = conn.execute(
                f"SELECT MAX(friend_count) FROM user_friends f WHERE status = 'ok' AND {wave}"
            ).fetchone()[0]
            if top is None:
                return 1, []
            width = figures.bin_width(int(top), bins)
            found = conn.execute(
                f"""SELECT friend_count / ? AS b, COUNT(*) AS n FROM user_friends f
                   WHERE status = 'ok' AND {wave} GROUP BY b ORDER BY b""",
                (width,),
            ).fetchall()
            return width, figures.bins(found)

        return await self._call("read figures", run)

    async def list_counts(self) -> ListCounts:
        def run(conn: sqlite3.Connection) -> ListCounts:
            wave = waves.in_current(conn)  # the current wave's results, as status counts
            ok = conn.execute(
                f"SELECT COUNT(*) FROM user_friends f WHERE status = 'ok' AND {wave}"
            ).fetchone()
            # The WHERE repeats the partial index's own, so only its rows are read (and,
            # past the first wave, their wave).
            row = conn.execute(
                f"""SELECT COALESCE(SUM(truncated = 1), 0),
                          COALESCE(SUM(truncated = 1 AND (following_count IS NULL
                              OR ABS(following_count - friend_count) > 0.01 * following_count)), 0),
                          COALESCE(SUM(truncated = 0
                              AND following_count - friend_count > 0.01 * following_count), 0)
                   FROM user_friends f
                   WHERE status = 'ok' AND (truncated = 1 OR following_count > friend_count)
                         AND {waves.in_current(conn, by_wave=False)}"""
            ).fetchone()
            return ListCounts(int(ok[0]), int(row[0]), int(row[1]), int(row[2]))

        return await self._call("read figures", run)

    async def failure_kinds(self, *, limit: int) -> list[tuple[str, int]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            found = conn.execute(
                f"""SELECT {_ERROR_KIND} AS kind, COUNT(*) AS n FROM user_friends f
                    WHERE status = 'failed' AND {waves.in_current(conn, by_wave=False)}
                    GROUP BY kind ORDER BY n DESC, kind LIMIT ?""",
                (figures.at_least_one(limit),),
            ).fetchall()
            return figures.failure_kinds(found)

        return await self._call("read figures", run)

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        since_sql = to_sql(since)

        def run(conn: sqlite3.Connection) -> list[StatusSummary]:
            if totals.kept(conn):
                wave = waves.current(conn)
                found = totals.summary(conn, wave if wave > 1 else None, since_sql)
            else:  # a store of an older version, opened read-only: counted from its rows
                found = totals.recount(conn, waves.in_current(conn), since_sql)
            return [figures.status_summary(r) for r in found]

        return await self._call("read summary", run)

    async def run_spans(self) -> list[RunSpan]:
        def run(conn: sqlite3.Connection) -> list[RunSpan]:
            if "run_samples" not in table_names(conn):
                return []  # a store of an older version, opened read-only
            found = conn.execute(
                """SELECT partition AS part, run_id, MIN(at) AS first_at, MAX(at) AS last_at,
                          MAX(final) AS final
                   FROM run_samples GROUP BY partition, run_id ORDER BY part, first_at"""
            ).fetchall()
            return [figures.run_span(r) for r in found]

        return await self._call("read samples", run)

    async def _job_facts(self, keys: tuple[str, ...]) -> dict[str, str]:
        """The job facts named ``keys`` the store records (none on a store of an older
        version): the platform's and the plan's are read alike."""

        def run(conn: sqlite3.Connection) -> dict[str, str]:
            if "job" not in table_names(conn):
                return {}  # a store of an older version: none recorded
            marks = ", ".join("?" * len(keys))
            found = conn.execute(f"SELECT key, value FROM job WHERE key IN ({marks})", keys)
            return {str(key): str(value) for key, value in found}

        return await self._call("read job", run)

    async def job_platform(self) -> str | None:
        return (await self._job_facts(("platform",))).get("platform")

    async def plan_cut(self) -> PlanCut | None:
        return PlanCut.from_facts(await self._job_facts(PLAN_FACTS))

    async def source_counts(self) -> list[tuple[str, int]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            found = conn.execute(
                """SELECT COALESCE(source, '') AS source, COUNT(*) AS n FROM user_friends
                   GROUP BY 1 ORDER BY n DESC, source"""
            ).fetchall()
            return figures.source_counts(found)

        return await self._call("read figures", run)
