"""BigQuery store details without I/O: URL parsing, table schemas, rows to insert and
their chunks (rows read back are mapped by ``rows.py``, as SQLite's are)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from friendscrape import checks
from friendscrape.errors import UsageError
from friendscrape.models import FriendList, utc
from friendscrape.stores.bigquery_lib import SchemaField

# Project ids: 6-30 chars of lowercase letters, digits and hyphens, optionally behind a
# domain prefix ("example.com:project"). Dataset ids: letters, digits, underscores, up
# to 1024 (checked by checks.bigquery_store in parse_url). These are the only names
# formatted into SQL, so nothing else gets through.

USERS = "users"
RESULTS = "user_friends"
PARTITIONS = "partitions"
LEASES = "partition_leases"
RESOLVED = "resolved_ids"
SAMPLES = "run_samples"
WAVES = "waves"

USERS_SCHEMA = (
    SchemaField("user_id", "STRING", mode="REQUIRED"),
    SchemaField("screen_name", "STRING"),
    SchemaField("following_count", "INT64"),
)

# The staging table a streamed import loads into (``ord``: the row's place in the file,
# so each user's last row wins, as on SQLite).
IMPORT_SCHEMA = (
    SchemaField("ord", "INT64"),
    SchemaField("user_id", "STRING"),
    SchemaField("screen_name", "STRING"),
    SchemaField("following_count", "INT64"),
)

# The original deployment's columns and types come first, unchanged, so its monitoring
# SQL keeps working; everything after them is new and NULLABLE (old rows have NULLs).
RESULTS_SCHEMA = (
    SchemaField("user_id", "STRING"),
    SchemaField("screen_name", "STRING"),
    SchemaField("friend_count", "INT64"),
    SchemaField("friend_names", "STRING", mode="REPEATED"),
    SchemaField("start_at", "TIMESTAMP"),
    SchemaField("end_at", "TIMESTAMP"),
    SchemaField("friend_ids", "STRING", mode="REPEATED"),
    SchemaField("following_count", "INT64"),
    SchemaField("truncated", "BOOL"),
    SchemaField("status", "STRING"),
    SchemaField("error", "STRING"),
    SchemaField("source", "STRING"),
    SchemaField("partition", "INT64"),
    SchemaField("attempts", "INT64"),
    SchemaField("run_id", "STRING"),
    SchemaField("row_key", "STRING"),
    # Waves (bigquery_waves.py): NULL in rows written before them (wave 1, no hash).
    SchemaField("wave", "INT64"),
    SchemaField("list_hash", "INT64"),
    SchemaField("changed", "INT64"),
    SchemaField("same_list", "BOOL"),
)

# The job's waves: one row per wave opened (none: the job is in wave 1).
WAVES_SCHEMA = (
    SchemaField("wave", "INT64", mode="REQUIRED"),
    SchemaField("opened_at", "TIMESTAMP", mode="REQUIRED"),
)

PARTITIONS_SCHEMA = (
    SchemaField("user_id", "STRING", mode="REQUIRED"),
    SchemaField("partition", "INT64", mode="REQUIRED"),
    SchemaField("position", "INT64", mode="REQUIRED"),
)

# One row per held partition (two only after two runs raced to insert it: the earlier
# acquired_at, then the smaller run_id, wins and the other run deletes its row).
LEASES_SCHEMA = (
    SchemaField("partition", "INT64", mode="REQUIRED"),
    SchemaField("host", "STRING"),
    SchemaField("pid", "INT64"),
    SchemaField("run_id", "STRING"),
    SchemaField("acquired_at", "TIMESTAMP"),
    SchemaField("heartbeat_at", "TIMESTAMP"),
    SchemaField("expires_at", "TIMESTAMP"),
)

# Account ids looked up for handles, appended (a user looked up twice has two rows with
# the same id). A table of its own, made by the first run, so that stores made before it
# still open read-only.
RESOLVED_SCHEMA = (
    SchemaField("user_id", "STRING", mode="REQUIRED"),
    SchemaField("resolved_id", "STRING", mode="REQUIRED"),
)

# What each run met, per interval: appended at its start, at each lease heartbeat and
# at its end; counts are deltas since the run's previous sample (see RunSample). A table
# of its own, made by the first run; reads of a store without it find no samples.
SAMPLES_SCHEMA = (
    SchemaField("run_id", "STRING", mode="REQUIRED"),
    SchemaField("partition", "INT64", mode="REQUIRED"),
    SchemaField("at", "TIMESTAMP", mode="REQUIRED"),
    SchemaField("source", "STRING"),
    SchemaField("upstream_host", "STRING"),
    SchemaField("simulated", "BOOL"),
    SchemaField("users_done", "INT64"),
    SchemaField("pages", "INT64"),
    SchemaField("rate_limited", "INT64"),
    SchemaField("paused_seconds", "FLOAT64"),
    SchemaField("learned_rate", "FLOAT64"),
    SchemaField("final", "BOOL"),
)

SCHEMAS: Mapping[str, tuple[SchemaField, ...]] = {
    USERS: USERS_SCHEMA,
    RESULTS: RESULTS_SCHEMA,
    PARTITIONS: PARTITIONS_SCHEMA,
    LEASES: LEASES_SCHEMA,
    RESOLVED: RESOLVED_SCHEMA,
    SAMPLES: SAMPLES_SCHEMA,
    WAVES: WAVES_SCHEMA,
}

# A dataset is a friendscrape store when it has these; the lease table is newer and is
# created by the first write command, so an older store still reads.
CORE_TABLES = (USERS, RESULTS, PARTITIONS)

# BigQuery rejects streaming requests over 10 MB; stay far below it so one large
# user (2,000 names is about 30 KB of JSON) can never tip a chunk over.
MAX_CHUNK_ROWS = 500
MAX_CHUNK_BYTES = 4_000_000


@dataclass(frozen=True, slots=True)
class Location:
    """A validated ``bigquery://PROJECT/DATASET``."""

    project: str
    dataset: str

    def table(self, name: str) -> str:
        """The fully qualified, backquoted table name for SQL (names are validated)."""
        return f"`{self.project}.{self.dataset}.{name}`"

    def table_id(self, name: str) -> str:
        """The table id for client calls: ``project.dataset.table``."""
        return f"{self.project}.{self.dataset}.{name}"


def parse_url(url: str) -> Location:
    """Parse ``bigquery://PROJECT/DATASET``; anything else is a UsageError."""
    scheme, sep, _ = url.partition("://")
    if scheme != "bigquery" or not sep:
        msg = f"not a BigQuery store URL: {url!r} (use bigquery://PROJECT/DATASET)"
        raise UsageError(msg)
    try:
        project, dataset = checks.bigquery_store(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Location(project=project, dataset=dataset)


def row_key(result: FriendList, run_id: str) -> str:
    """The insertId of one result: the same result saved again by this run gets the same key.

    A retried chunk therefore repeats its keys (BigQuery drops the repeats best-effort,
    and reads drop them for sure), while a user collected again gets a new start_at and
    so a new key.
    """
    parts = (
        result.user_id,
        run_id,
        utc(result.start_at).isoformat(),
        utc(result.end_at).isoformat(),
        str(result.attempts),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def to_row(result: FriendList, *, run_id: str, key: str) -> dict[str, Any]:
    """One ``user_friends`` row as streaming-insert JSON."""
    return {**result.as_json(), "run_id": run_id, "row_key": key}


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows for one insertAll request, with their insertIds in the same order."""

    rows: tuple[dict[str, Any], ...]
    row_ids: tuple[str, ...]


def chunks(
    rows: Sequence[dict[str, Any]],
    row_ids: Sequence[str],
    *,
    max_rows: int = MAX_CHUNK_ROWS,
    max_bytes: int = MAX_CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Split rows into requests bounded by row count and by JSON size."""
    batch: list[dict[str, Any]] = []
    ids: list[str] = []
    size = 0
    for row, row_id in zip(rows, row_ids, strict=True):
        # insertAll wraps each row as {"insertId": ..., "json": ...}: count a margin for it.
        row_size = len(json.dumps(row, ensure_ascii=False).encode()) + len(row_id) + 40
        if batch and (len(batch) >= max_rows or size + row_size > max_bytes):
            yield Chunk(tuple(batch), tuple(ids))
            batch, ids, size = [], [], 0
        batch.append(row)
        ids.append(row_id)
        size += row_size
    if batch:
        yield Chunk(tuple(batch), tuple(ids))
