"""Stores: where users, the partition plan and results live (SQLite, BigQuery).

A store classifies its failures (StoreTransientError: worth another try;
StoreUnavailableError: cannot reach it; StoreError: anything else) and never retries:
its callers retry a call (``retried`` below, or ``friendscrape.retry.retry_call`` with
the policy of the ``StoreConfig``), so each call is retried in one layer only. A store is
opened from a ``StoreConfig`` (``stores/config.py``), never from the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from friendscrape.errors import StoreTransientError, StoreUnavailableError, UsageError
from friendscrape.retry import RetryPolicy, retry_call
from friendscrape.stores.config import StoreConfig

if TYPE_CHECKING:
    from friendscrape.stores.base import Store

__all__ = ["StoreConfig", "open_store", "opened_store", "retried"]

T = TypeVar("T")


async def retried(policy: RetryPolicy, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, made again while it fails transiently, within the store
    ``policy`` (``StoreConfig.retry``; for callers whose store call is safe to repeat:
    reads, re-imports, plans)."""
    return await retry_call(
        call,
        on=StoreTransientError,
        policy=policy,
        event="store.retry",
        what=what,
    )


def open_store(config: StoreConfig, *, create: bool = False, read_only: bool = False) -> Store:
    """Build the store ``config.url`` names (not yet opened). Only ``create`` may
    start a new SQLite file: elsewhere a mistyped path must not read as an empty store.
    ``read_only``: opening changes nothing (no tables, no journal mode, no dataset), and
    a store that is not friendscrape's is a StoreUnavailableError."""
    url = config.url
    scheme, sep, _ = url.partition("://")
    if not sep and url.partition(":")[0] in ("sqlite", "bigquery"):
        msg = f"malformed store URL {url!r}: use sqlite:///PATH or bigquery://PROJECT/DATASET"
        raise UsageError(msg)
    if not sep:
        msg = f"store URL {url!r} has no scheme: use sqlite:///PATH or bigquery://PROJECT/DATASET"
        raise UsageError(msg)
    if scheme == "sqlite":
        from friendscrape.stores.sqlite import SqliteStore  # noqa: PLC0415

        return SqliteStore.from_url(url, config.sqlite, create=create, read_only=read_only)
    if scheme == "bigquery":
        from friendscrape.stores.bigquery import BigQueryStore  # noqa: PLC0415

        return BigQueryStore.from_url(url, config.bigquery, read_only=read_only)
    msg = f"unknown store scheme {scheme!r}: use sqlite:///PATH or bigquery://PROJECT/DATASET"
    raise UsageError(msg)


@asynccontextmanager
async def opened_store(
    config: StoreConfig, *, create: bool = False, read_only: bool = False
) -> AsyncIterator[Store]:
    """The store ``config`` names, opened, and closed however the block ends (``create``: a new
    SQLite file may be started, as importing users does; ``read_only``: nothing in the
    store is created or changed, for commands that only read). Opening is retried while
    it fails transiently, then is a StoreUnavailableError."""
    store = open_store(config, create=create, read_only=read_only)
    try:
        await retried(config.retry, "open", store.open)
    except StoreTransientError as exc:
        # Still failing once the retries are spent: the store cannot be reached.
        await store.close()
        raise StoreUnavailableError(str(exc)) from None
    try:
        yield store
    finally:
        await store.close()
