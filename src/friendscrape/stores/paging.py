"""Paging for both stores: pages of users behind a cursor, batches of a write, and rows
streamed a page at a time with the next page read while the caller handles this one.

A store supplies only its SQL and how to fetch one page; the loops are written here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from friendscrape.errors import PlanError
from friendscrape.models import UserPage
from friendscrape.stores.rows import Row, user

T = TypeVar("T")


def cursor_after(cursor: str | None) -> int:
    """The plan position a page of pending users starts after (0: from the start)."""
    if not cursor:
        return 0
    if not (cursor.isascii() and cursor.isdigit()):
        msg = f"bad cursor {cursor!r}"
        raise PlanError(msg)
    return int(cursor)


def user_page(rows: Sequence[Row], limit: int) -> UserPage:
    """A page of pending users from rows of user_id, screen_name, following_count,
    resolved_id and position (their plan position, the next page's cursor); a page
    shorter than ``limit`` is the last."""
    users = tuple(user(r) for r in rows)
    cursor = str(rows[-1]["position"]) if rows and len(rows) >= limit else None
    return UserPage(users=users, cursor=cursor)


def batches(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    """``items`` in slices of at most ``size``, each with the index of its first item."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


async def read_ahead(fetch: Callable[[], Awaitable[Sequence[T]]]) -> AsyncGenerator[T, None]:
    """Every item of the pages ``fetch`` returns until it returns an empty one, the next
    page fetched while the caller handles this one.

    Closed early, it waits for the page being fetched, so a cursor the pages come from
    may be closed once this generator is (use ``contextlib.aclosing``).
    """
    ahead: asyncio.Future[Sequence[T]] | None = asyncio.ensure_future(fetch())
    try:
        while ahead is not None:
            page = await ahead
            ahead = None
            if not page:
                return
            ahead = asyncio.ensure_future(fetch())
            for item in page:
                yield item
    finally:
        if ahead is not None:
            # The page being read must finish before its cursor closes.
            await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()
