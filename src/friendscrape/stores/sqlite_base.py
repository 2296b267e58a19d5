"""The SQLite store's plumbing: one connection used by one call at a time in a worker
thread, failures classified, times as stored, and statements streamed a page at a time."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import sqlite3
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from friendscrape import loopbound
from friendscrape.errors import StoreError, StoreTransientError
from friendscrape.models import utc
from friendscrape.stores import paging, thread_heap
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


def _temp_store_default(conn: sqlite3.Connection) -> None:
    """temp_store back to the default; it cannot change inside a transaction, so one a
    failed call left open is rolled back first (as it would be next anyway)."""
    if conn.in_transaction:
        conn.rollback()
    conn.execute("PRAGMA temp_store = DEFAULT")


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
        self._loop = loopbound.RunningLoop()
        # (Page size, max_friends) -> the weight of a user with no following count, as
        # the claims' reads weigh it (sqlite_plan.kept_weights).
        self._medians: dict[tuple[int, int | None], int] = {}
        # One thread of the store's own runs every call on the connection: with the
        # loop's shared pool, calls moved between threads, each growing a memory arena of
        # its own (system calls a page, and page faults), and waited on threads the
        # collection's other work could hold.
        self._thread: ThreadPoolExecutor | None = None
        # This connection's filter of the job's keys, built on a connection of its own.
        self._matcher = SaveMatcher(self._connect_apart)
        # The connection whose statement journals are kept in memory now (``_call``).
        self._journals_in_memory: sqlite3.Connection | None = None
        # Whether the store keeps running totals its saves add their rows to (set when
        # opened to write: ``sqlite_totals.migrate``).
        self._keeps_totals = False
        # Whether the store's thread has grown its heap to its working size at once
        # (``thread_heap``: by the first save, not a page at a time as saves need it).
        self._heap_reserved = False

    def _connect_apart(self) -> sqlite3.Connection:
        """Another connection to the store, to read from in a thread of its own."""
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)

    async def _call(
        self,
        action: str,
        func: Callable[[sqlite3.Connection], T],
        *,
        journals_in_memory: bool = False,
    ) -> T:
        """``func`` run on the connection in the store's thread, one call at a time.
        ``journals_in_memory`` (a write of many rows): its statement journals are kept in
        memory, not written to temporary files and read back (some 0.35 writes a page on
        x-api); any other call sets the default again first, so the temporary tables of
        imports and exports stay on disk. A run's saves in a row keep the setting: set
        and reset around each, they were two statements of some eight a save, each
        letting go of the interpreter's lock and taking it back from the busy loop."""
        if self._conn is None:
            msg = "store is not open"
            raise StoreError(msg)
        conn = self._conn

        def guarded() -> T:
            try:
                in_memory = self._journals_in_memory is conn
                if journals_in_memory and not in_memory:
                    conn.execute("PRAGMA temp_store = MEMORY")
                    self._journals_in_memory = conn
                elif in_memory and not journals_in_memory:
                    _temp_store_default(conn)
                    self._journals_in_memory = None
                return func(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise _classify(exc, action) from None

        await self._lock.acquire()
        # The thread cannot be stopped, so a caller that gives up (write timeout,
        # shutdown) must not let the next call onto the connection while it still runs:
        # the lock is released when the thread ends, not when the caller stops waiting.
        try:
            work = self._in_thread(guarded)
        except BaseException:
            self._lock.release()
            raise
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _in_thread(self, func: Callable[[], T]) -> asyncio.Future[T]:
        """``func`` run in the store's thread (started on first use), with the caller's
        context, as ``asyncio.to_thread`` would."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="friendscrape-sqlite")
        call = functools.partial(contextvars.copy_context().run, func)
        # The loop looked up once, not at each call (a getpid each on Python 3.11).
        return self._loop.get().run_in_executor(self._thread, call)

    def _reserve_heap(self) -> None:
        """In the store's thread, before its first save: its heap grown at once."""
        if not self._heap_reserved:
            self._heap_reserved = True
            thread_heap.reserve()

    def _stop_thread(self) -> None:
        """Let the store's thread end once its last call is done (a reopen starts another)."""
        self._heap_reserved = False  # the next thread has a heap of its own
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)

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
