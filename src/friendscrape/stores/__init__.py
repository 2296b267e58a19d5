"""Stores: where users, the partition plan and results live (SQLite, BigQuery)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from friendscrape.errors import UsageError

if TYPE_CHECKING:
    from friendscrape.config import Settings
    from friendscrape.stores.base import Store


def open_store(settings: Settings, *, create: bool = False, read_only: bool = False) -> Store:
    """Build the store named by ``settings.store`` (not yet opened). Only ``create`` may
    start a new SQLite file: elsewhere a mistyped path must not read as an empty store.
    ``read_only``: opening changes nothing (no tables, no journal mode, no dataset), and
    a store that is not friendscrape's is a StoreUnavailableError."""
    url = settings.store
    scheme, sep, _ = url.partition("://")
    if not sep and url.partition(":")[0] in ("sqlite", "bigquery"):
        msg = f"malformed store URL {url!r}: use sqlite:///PATH or bigquery://PROJECT/DATASET"
        raise UsageError(msg)
    if not sep:
        msg = f"store URL {url!r} has no scheme: use sqlite:///PATH or bigquery://PROJECT/DATASET"
        raise UsageError(msg)
    if scheme == "sqlite":
        from friendscrape.stores.sqlite import SqliteStore  # noqa: PLC0415

        return SqliteStore.from_url(url, settings, create=create, read_only=read_only)
    if scheme == "bigquery":
        from friendscrape.stores.bigquery import BigQueryStore  # noqa: PLC0415

        return BigQueryStore.from_url(url, settings, read_only=read_only)
    msg = f"unknown store scheme {scheme!r}: use sqlite:///PATH or bigquery://PROJECT/DATASET"
    raise UsageError(msg)


@asynccontextmanager
async def opened_store(
    settings: Settings, *, create: bool = False, read_only: bool = False
) -> AsyncIterator[Store]:
    """The settings' store, opened, and closed however the block ends (``create``: a new
    SQLite file may be started, as importing users does; ``read_only``: nothing in the
    store is created or changed, for commands that only read)."""
    store = open_store(settings, create=create, read_only=read_only)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
