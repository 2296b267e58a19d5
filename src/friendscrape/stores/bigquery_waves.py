"""Waves on BigQuery: every result row carries its wave (NULL in rows written before
waves: wave 1), its list's content hash, and ``same_list``: TRUE when the list equals the
user's previous result's and was not stored again (its arrays are empty; the list is the
user's newest row at or before it that holds one). ``user_friends`` is clustered by wave,
so a wave's read scans that wave's blocks; the `edges`/`nodes` views and every other read
resolve such rows, so the seed's SQL keeps working on each user's newest list through them
(and through the ``latest_friends`` view, ``user_friends``-shaped).

Opening a wave adds one row to ``waves`` (one MERGE, guarded by the wave read before it,
so two opened at once never add a wave twice); "pending in wave W" is "no row of wave W".
The previous result's hash comes with each pending user (read by ``pending_users``), so
a save compares hashes without a query of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc

from friendscrape.errors import StoreConflictError, WaveRaceError
from friendscrape.models import FriendList, Status
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import rows
from friendscrape.stores.base import WaveRow, WaveSummary
from friendscrape.stores.bigquery_base import BigQueryBase
from friendscrape.stores.bigquery_lib import bigquery
from friendscrape.stores.waves import list_hash, wave_row


@dataclass(frozen=True, slots=True)
class Previous:
    """A pending user's newest result: its list hash (None in rows written before
    waves) and status."""

    list_hash: int | None
    status: str | None


_CONFLICT_TRIES = 5
_CONFLICT_WAIT = 0.5
"""Seconds before the first retry of a statement aborted by a concurrent update,
doubled each time (x0.5-1.5)."""


def wave_is(wave: str) -> str:
    """SQL keeping rows of wave ``wave`` (an expression), rows of older versions as 1."""
    return f"(wave = {wave} OR (wave IS NULL AND {wave} = 1))"


def wave_fields(result: FriendList, wave: int, previous: Previous | None) -> dict[str, Any]:
    """The wave columns of one result's row, and its lists blanked when they equal the
    user's previous result's (``same_list``)."""
    new = list_hash(result.friend_names, result.friend_ids)
    same = (
        previous is not None
        and previous.list_hash == new
        and previous.status == "ok"
        and result.status is Status.OK
    )
    changed = None
    if previous is not None and previous.list_hash is not None:
        changed = int(previous.list_hash != new)
    fields: dict[str, Any] = {
        "wave": wave,
        "list_hash": new,
        "changed": changed,
        "same_list": same,
    }
    if same:
        fields.update(friend_names=[], friend_ids=[])
    return fields


class BigQueryWaves(BigQueryBase):
    """WaveStore on BigQuery."""

    _wave: int | None = None
    _previous: dict[str, Previous] | None = None

    def remember_previous(self, found: Sequence[dict[str, Any]]) -> None:
        """Keep the pending users' previous hashes and the current wave for the save."""
        if self._previous is None:
            self._previous = {}
        for row in found:
            if row.get("prev_status") is not None:
                self._previous[row["user_id"]] = Previous(row["prev_hash"], row["prev_status"])
            if row.get("current_wave") is not None:
                self._wave = int(row["current_wave"])

    def save_fields(self, results: Sequence[FriendList]) -> list[dict[str, Any]]:
        """The wave columns of each result's row (see ``wave_fields``): the wave read with
        the users pending (a save of users not read so is of wave 1)."""
        wave = self._wave if self._wave is not None else 1
        previous = self._previous or {}
        return [wave_fields(r, wave, previous.get(r.user_id)) for r in results]

    async def current_wave(self) -> int:
        def run() -> int:
            try:
                found = list(self._query_sync(f"SELECT {self.current_sql()} AS w"))
            except gexc.NotFound:
                return 1  # a store of an older version, opened read-only
            return int(found[0]["w"])

        return await self._call("waves", run)

    def current_sql(self) -> str:
        """The current wave as SQL (1 when none was opened)."""
        return f"(SELECT COALESCE(MAX(wave), 1) FROM {self._t(schema.WAVES)})"

    async def open_wave(self, now: datetime) -> int:
        """Open the wave after the current one, atomically: of two ``waves new`` at once,
        one opens it and the other is refused (WaveRaceError), never a wave twice."""
        first = await self._rows(
            "open wave", f"SELECT MIN(start_at) AS t FROM {self._t(schema.RESULTS)}"
        )
        wave = await self.current_wave() + 1
        values = [(1, first[0]["t"] or now), (wave, now)]  # wave 1's row, when none is
        marks = " UNION ALL ".join(f"SELECT @w{i} AS wave, @t{i} AS t" for i in range(2))
        params = [
            p
            for i, (w, t) in enumerate(values)
            for p in (
                bigquery.ScalarQueryParameter(f"w{i}", "INT64", w),
                bigquery.ScalarQueryParameter(f"t{i}", "TIMESTAMP", t),
            )
        ]
        # One MERGE, guarded by the wave read above: a row goes in only while no wave at
        # or past it exists. BigQuery runs mutating DML on a table one at a time (the later
        # is aborted, having changed nothing, or runs after and finds the wave there).
        merge = f"""
            MERGE {self._t(schema.WAVES)} AS t
            USING ({marks}) AS s
            ON t.wave >= s.wave
            WHEN NOT MATCHED THEN INSERT (wave, opened_at) VALUES (s.wave, s.t)
        """
        await self._conflict_retried("open wave", lambda: self._rows("open wave", merge, *params))
        mine = await self._rows(
            "open wave",
            f"""SELECT COUNTIF(opened_at = @t1) AS mine FROM {self._t(schema.WAVES)}
                WHERE wave = @w1""",
            *params[2:],
        )
        if not int(mine[0]["mine"] or 0):
            raise WaveRaceError(wave)
        return wave

    async def _conflict_retried(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        """``call()``, again after a jittered wait while BigQuery aborts it for a
        concurrent update (it changed nothing then)."""
        for attempt in range(1, _CONFLICT_TRIES + 1):
            try:
                await call()
            except StoreConflictError as exc:
                if attempt == _CONFLICT_TRIES:
                    raise
                wait = _CONFLICT_WAIT * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                self._log.warning(
                    "store.retry", what=what, attempt=attempt, wait=round(wait, 2), error=str(exc)
                )
                await asyncio.sleep(wait)
            else:
                return

    def _tries(self, where: str) -> str:
        """Rows of ``where`` once each (a retried insert's repeats dropped)."""
        return f"""tries AS (
            SELECT * FROM {self._t(schema.RESULTS)}
            WHERE {where}
            QUALIFY ROW_NUMBER() OVER (
                PARTITION BY COALESCE(row_key, CONCAT(user_id, '@', CAST(start_at AS STRING)))
                ORDER BY end_at DESC
            ) = 1
        )"""

    async def wave_summaries(self, *, times: bool = True) -> list[WaveSummary]:
        del times  # one query gives the times with the counts
        sql = f"""
            WITH {self._tries("TRUE")},
            per_wave AS (
                SELECT *, COALESCE(wave, 1) AS w FROM tries
                WHERE TRUE
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id, COALESCE(wave, 1) ORDER BY end_at DESC, row_key DESC
                ) = 1
            )
            SELECT w, COUNT(*) AS done, COUNTIF(status = 'ok') AS ok,
                   SUM(COALESCE(changed, 0)) AS changed, MIN(start_at) AS first_start,
                   MAX(end_at) AS last_end
            FROM per_wave GROUP BY w ORDER BY w
        """
        found = await self._rows("waves", sql)
        opened = await self._opened()
        last = max([*opened, *(int(r["w"]) for r in found), 1])
        by_wave = {int(r["w"]): r for r in found}
        return [_summary(w, by_wave.get(w), opened.get(w)) for w in range(1, last + 1)]

    async def _opened(self) -> dict[int, datetime | None]:
        def run() -> dict[int, datetime | None]:
            try:
                found = self._query_sync(
                    f"SELECT wave, MIN(opened_at) AS t FROM {self._t(schema.WAVES)} GROUP BY wave"
                )
                return {int(r["wave"]): rows.moment(r["t"]) for r in found}
            except gexc.NotFound:
                return {}

        return await self._call("waves", run)

    async def wave_rows(self, wave: int) -> AsyncIterator[WaveRow]:
        sql = f"""
            WITH {self._tries("COALESCE(wave, 1) <= @wave")},
            this_wave AS (
                SELECT * FROM tries
                WHERE {wave_is("@wave")}
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id ORDER BY end_at DESC, row_key DESC
                ) = 1
            ),
            listed AS (
                SELECT user_id, friend_names AS kept_names, friend_ids AS kept_ids FROM tries
                WHERE NOT COALESCE(same_list, FALSE)
                QUALIFY ROW_NUMBER() OVER (
                    PARTITION BY user_id ORDER BY COALESCE(wave, 1) DESC, end_at DESC
                ) = 1
            )
            SELECT r.user_id, r.screen_name, r.status, r.source, r.`partition`, r.start_at,
                   r.end_at, r.following_count, r.truncated, r.error, r.attempts, r.list_hash,
                   IF(COALESCE(r.same_list, FALSE), l.kept_names, r.friend_names) AS friend_names,
                   IF(COALESCE(r.same_list, FALSE), l.kept_ids, r.friend_ids) AS friend_ids
            FROM this_wave AS r LEFT JOIN listed AS l ON l.user_id = r.user_id
            ORDER BY LENGTH(r.user_id), r.user_id
        """
        param = bigquery.ScalarQueryParameter("wave", "INT64", wave)
        async with contextlib.aclosing(self._stream("wave rows", sql, [param])) as streamed:
            async for row in streamed:
                yield wave_row(row)


def _summary(wave: int, row: dict[str, Any] | None, opened: datetime | None) -> WaveSummary:
    first = rows.moment(row["first_start"]) if row else None
    return WaveSummary(
        wave=wave,
        opened_at=opened or first,
        first_start=first,
        last_end=rows.moment(row["last_end"]) if row else None,
        done=int(row["done"]) if row else 0,
        ok=int(row["ok"] or 0) if row else 0,
        changed=int(row["changed"] or 0) if row else 0,
    )
