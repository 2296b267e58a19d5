"""What a store is opened with: small frozen configs, built from the settings at the edge
(``friendscrape.configparts``), so that no store reads Settings. Light to import: a
command that opens SQLite loads nothing of BigQuery to build its config."""

from __future__ import annotations

from dataclasses import dataclass

from friendscrape.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class SqliteConfig:
    """What the SQLite store uses: the pipeline's write timeout, which its own wait for a
    lock ends well inside."""

    write_timeout: float


@dataclass(frozen=True, slots=True)
class BigQueryConfig:
    """What the BigQuery store uses: where to reach it, how to write, how long one call
    may take."""

    endpoint: str | None
    grpc_endpoint: str | None
    write_api: str
    write_timeout: float
    retry_deadline: float


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The store to open (``url``: sqlite:///PATH or bigquery://PROJECT/DATASET), how
    hard a caller retries a store call that failed transiently (stores never retry), and
    each kind of store's own part."""

    url: str
    retry: RetryPolicy
    sqlite: SqliteConfig
    bigquery: BigQueryConfig
