"""Settings turned into the small frozen configs of the parts a command opens (its
store and its source), the way httpx hands its client a ``Timeout`` and never
a settings object: below this edge no part reads Settings. A run's own parts get theirs
in ``core/assemble.py``."""

from __future__ import annotations

from friendscrape.config import Settings
from friendscrape.errors import UsageError
from friendscrape.platforms import NO_PLATFORM
from friendscrape.retry import RetryPolicy
from friendscrape.sources import SourceConfig
from friendscrape.stores.config import BigQueryConfig, SqliteConfig, StoreConfig


def store_config(settings: Settings) -> StoreConfig:
    """The store the settings name, how hard its calls are retried, and each kind's part."""
    return StoreConfig(
        url=settings.store,
        retry=store_retry_policy(settings),
        sqlite=sqlite_config(settings),
        bigquery=bigquery_config(settings),
    )


def store_retry_policy(settings: Settings) -> RetryPolicy:
    """How hard a caller retries a store call that failed transiently."""
    return RetryPolicy(
        attempts=settings.store_attempts,
        deadline=settings.store_retry_deadline,
        base_wait=settings.retry_base_wait,
        max_wait=settings.retry_max_wait,
    )


def sqlite_config(settings: Settings) -> SqliteConfig:
    """The SQLite store's part of the settings."""
    return SqliteConfig(write_timeout=settings.write_timeout)


def bigquery_config(settings: Settings) -> BigQueryConfig:
    """The BigQuery store's part of the settings."""
    return BigQueryConfig(
        endpoint=settings.bigquery_endpoint,
        grpc_endpoint=settings.bigquery_grpc_endpoint,
        write_api=settings.bigquery_write_api,
        write_timeout=settings.write_timeout,
        retry_deadline=settings.store_retry_deadline,
    )


def source_config(settings: Settings, platform: str | None = None) -> SourceConfig:
    """The source of ``platform`` (the job's, as the run settled it), else the one the
    settings name, at their base URL; no platform is a UsageError (none is a default)."""
    name = platform or settings.source
    if name is None:
        raise UsageError(NO_PLATFORM)
    return SourceConfig(
        name=name,
        base_url=settings.base_url,
        url_credentials=settings.base_url_credentials is not None,
    )
