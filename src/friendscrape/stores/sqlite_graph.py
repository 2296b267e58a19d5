"""The SQLite store's graph reads: friend lists with their targets resolved to the job's
ids in SQL, and the job's users as nodes; each one statement streamed in user id order."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from friendscrape.stores.base import EdgeList, NodeRow

# Every key a friend may be named by (a user's id, its name ignoring case) -> that user's
# id. A temporary table: built per export on the export's own connection, so a store
# opened read-only (or written by an older version) resolves just as fast, and nothing is
# added to the store's file. Ids go first: a name that equals another user's id loses.
_KEYS = """
DROP TABLE IF EXISTS temp.job_keys;
CREATE TEMP TABLE job_keys (
    k TEXT PRIMARY KEY COLLATE NOCASE,
    user_id TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO temp.job_keys SELECT user_id, user_id FROM users ORDER BY user_id;
INSERT OR IGNORE INTO temp.job_keys SELECT user_id, user_id FROM user_friends ORDER BY user_id;
INSERT OR IGNORE INTO temp.job_keys SELECT screen_name, user_id FROM users
    WHERE screen_name <> '' ORDER BY user_id;
INSERT OR IGNORE INTO temp.job_keys SELECT screen_name, user_id FROM user_friends
    WHERE screen_name <> '' ORDER BY user_id;
"""

# One row per collected user (``{order}``: the store's user order): its lists, and for
# each friend the job's id it resolves to by name and by upstream id (JSON null where
# none). json_each walks a list in order and json_group_array keeps the order it is fed.
EDGES_SQL = """
SELECT f.user_id, COALESCE(f.screen_name, '') AS screen_name, f.source,
       f.friend_names, f.friend_ids,
       (SELECT json_group_array((SELECT k.user_id FROM temp.job_keys k WHERE k.k = n.value))
        FROM json_each(f.friend_names) n) AS by_name,
       CASE WHEN f.friend_ids = '[]' THEN '[]' ELSE
       (SELECT json_group_array((SELECT k.user_id FROM temp.job_keys k WHERE k.k = i.value))
        FROM json_each(f.friend_ids) i) END AS by_id
FROM user_friends f
WHERE f.friend_count > 0 AND (:part IS NULL OR :part = COALESCE(
    (SELECT u.partition FROM users u WHERE u.user_id = f.user_id), f.partition, 0))
ORDER BY {order}
"""

NODES_SQL = """
SELECT * FROM (
    SELECT u.user_id, COALESCE(NULLIF(u.screen_name, ''), f.screen_name, '') AS name,
           COALESCE(f.status, 'pending') AS status,
           COALESCE(f.following_count, u.following_count) AS following_count,
           f.friend_count, COALESCE(f.truncated, 0) AS truncated,
           COALESCE(u.partition, f.partition, 0) AS part, f.end_at
    FROM users u LEFT JOIN user_friends f ON f.user_id = u.user_id
    UNION ALL
    SELECT f.user_id, COALESCE(f.screen_name, ''), f.status, f.following_count,
           f.friend_count, f.truncated, COALESCE(f.partition, 0), f.end_at
    FROM user_friends f
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = f.user_id)
)
WHERE :part IS NULL OR part = :part
ORDER BY length(user_id), user_id
"""


def prepare_keys(conn: sqlite3.Connection) -> None:
    """Build the temporary key table edge reads join on."""
    conn.executescript(_KEYS)


def edge_list(row: sqlite3.Row) -> EdgeList:
    """An EdgeList from one row of EDGES_SQL: the store's matches, else upstream ids."""
    names: list[str] = json.loads(row["friend_names"])
    ids: list[str] = json.loads(row["friend_ids"])
    by_name: list[str | None] = json.loads(row["by_name"])
    by_id: list[str | None] = json.loads(row["by_id"])
    if ids and len(ids) == len(names):
        resolved = [a or b for a, b in zip(by_id, by_name, strict=True)]
        targets = [r or i or "" for r, i in zip(resolved, ids, strict=True)]
    else:
        resolved = by_name
        targets = [r or "" for r in resolved]
    return EdgeList(
        source_id=row["user_id"],
        source_name=row["screen_name"],
        platform=row["source"],
        names=names,
        targets=targets,
        known=[r is not None for r in resolved],
    )


def node_row(row: sqlite3.Row) -> NodeRow:
    """A NodeRow from one row of NODES_SQL."""
    end_at = row["end_at"]
    return NodeRow(
        user_id=row["user_id"],
        name=row["name"],
        status=row["status"],
        following_count=row["following_count"],
        friend_count=row["friend_count"],
        truncated=bool(row["truncated"]),
        partition=int(row["part"]),
        collected_at=datetime.fromisoformat(end_at).astimezone(UTC) if end_at else None,
    )
