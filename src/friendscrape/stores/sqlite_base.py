"""The SQLite store's plumbing: one connection used by one call at a time in a worker
thread, failures classified, times as stored, and statements streamed a page at a time."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from friendscrape.errors import StoreError, StoreTransientError
from friendscrape.models import utc
from friendscrape.stores import paging
from friendscrape.stores.sqlite_keys import SaveMatcher

T = TypeVar("T")

_PAGE = 500
"""Rows fetched per call by the streaming reads (results, edges, nodes)."""


def to_sql(moment: datetime) -> str:
    """A time as this store keeps it: ISO 8601 UTC text, which sorts as time does."""
    return utc(moment).isoformat(timespec="microseconds")


def _classify(exc: sqlite3.Error, action: str) -> StoreError:
    """Locks and I/O hiccups may pass; anything else is a real failure."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "disk I/O" in text
    ):
        return StoreTransientError(f"sqlite {action} failed: {text}")
    if "user-defined function raised exception" in text:
        # The one function friendscrape's SQL calls reads a stored list: SQLite keeps its
        # error to itself, so say what it means.
        return StoreError(
            f"sqlite {action} failed: a friend list in the store cannot be read: the store "
            "was changed outside friendscrape or is damaged; restore it from a copy"
        )
    return StoreError(f"sqlite {action} failed: {text}")


def table_names(conn: sqlite3.Connection) -> set[str]:
    """The tables of the store's file."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


class SqliteBase:
    """The connection every part of the SQLite store runs its statements on."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self._create = create and not read_only
        self._read_only = read_only
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        # This connection's filter of the job's keys, built on a connection of its own.
        self._matcher = SaveMatcher(self._connect_apart)

    def _connect_apart(self) -> sqlite3.Connection:
        """Another connection to the store, to read from in a thread of its own."""
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)

    async def _call(self, action: str, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            msg = "store is not open"
            raise StoreError(msg)
        conn = self._conn

        def guarded() -> T:
            try:
                return func(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise _classify(exc, action) from None

        await self._lock.acquire()
        # The thread cannot be stopped, so a caller that gives up (write timeout,
        # shutdown) must not let the next call onto the connection while it still runs:
        # the lock is released when the thread ends, not when the caller stops waiting.
        work = asyncio.ensure_future(asyncio.to_thread(guarded))
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _finished(self, work: asyncio.Future[Any]) -> None:
        self._lock.release()
        if not work.cancelled():
            work.exception()  # retrieved here too when the caller stopped waiting

    async def _stream(
        self,
        action: str,
        sql: str,
        params: dict[str, Any] | tuple[Any, ...] = (),
        prepare: Callable[[sqlite3.Connection], None] | None = None,
        page: int = _PAGE,
    ) -> AsyncGenerator[sqlite3.Row, None]:
        """Rows of one statement read in one pass, a page at a time, the next page read
        while the caller handles this one. ``sql`` may hold ``{order}``: the user order
        (numeric ids numerically) where the store has its index, else id text order (a
        store of an older version opened read-only), never a sort of the whole table."""

        def start(conn: sqlite3.Connection) -> sqlite3.Cursor:
            if prepare is not None:
                prepare(conn)
            indexed = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'user_friends_order'"
            ).fetchone()
            order = "length(user_id), user_id" if indexed else "user_id"
            return conn.execute(sql.format(order=order), params)

        cursor = await self._call(action, start)

        async def fetch() -> list[sqlite3.Row]:
            return await self._call(action, lambda _c: cursor.fetchmany(page))

        try:
            async with contextlib.aclosing(paging.read_ahead(fetch)) as streamed:
                async for row in streamed:
                    yield row
        finally:
            # An abandoned export may be finalised after the store closed its connection.
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()
