"""The BigQuery store's graph reads and its `edges` and `nodes` views: friend lists
unnested with each target resolved to the job's ids in the query (no join in Python)."""

from __future__ import annotations

EDGES_VIEW = "edges"
NODES_VIEW = "nodes"

_NUM = "IF(REGEXP_CONTAINS({c}, r'^[0-9]{{1,19}}$'), SAFE_CAST({c} AS INT64), NULL)"


def _keys(users: str) -> str:
    """Every key a friend may be named by (a user's id, its name ignoring case)."""
    return f"""keys AS (
        SELECT k, MIN(user_id) AS user_id FROM (
            SELECT LOWER(user_id) AS k, user_id FROM {users}
            UNION ALL
            SELECT LOWER(screen_name) AS k, user_id FROM {users} WHERE screen_name != ''
        ) GROUP BY k
    )"""


def edges_select(latest: str, users: str, plan: str, *, keyed: bool = False) -> str:
    """One row per edge: ``latest`` is a CTE list defining ``latest`` (newest results),
    ``plan`` the users' partitions. ``keyed`` (the view): a friend with no id is keyed
    ``name:NAME``, as the edges export keys it, rather than NULL."""
    by_name = ", CONCAT('name:', name)" if keyed else ""
    return f"""
        WITH {latest}, {_keys(users)}
        SELECT l.user_id AS source_id,
               COALESCE(ki.user_id, kn.user_id, NULLIF(fid, ''){by_name})
                   AS target_id,
               l.screen_name AS source_name, name AS target_name, pos AS position,
               l.source AS platform, (ki.user_id IS NOT NULL OR kn.user_id IS NOT NULL) AS known,
               COALESCE(p.`partition`, l.`partition`, 0) AS `partition`,
               {_NUM.format(c="l.user_id")} AS num
        FROM latest AS l
        CROSS JOIN UNNEST(l.friend_names) AS name WITH OFFSET AS pos
        LEFT JOIN UNNEST(l.friend_ids) AS fid WITH OFFSET AS fpos ON fpos = pos
        LEFT JOIN keys AS ki ON ki.k = LOWER(fid)
        LEFT JOIN keys AS kn ON kn.k = LOWER(name)
        LEFT JOIN {plan} AS p ON p.user_id = l.user_id
    """


def nodes_select(latest: str, users: str, plan: str) -> str:
    """One row per user of the job or of the results (``plan``: users' partitions)."""
    return f"""
        WITH {latest}
        SELECT COALESCE(u.user_id, l.user_id) AS id,
               COALESCE(NULLIF(u.screen_name, ''), l.screen_name, '') AS name,
               COALESCE(l.status, 'pending') AS status,
               COALESCE(l.following_count, u.following_count) AS following_count,
               l.friend_count AS friend_count, COALESCE(l.truncated, FALSE) AS truncated,
               COALESCE(l.status = 'ok' AND (NOT l.truncated OR ABS(
                   COALESCE(l.following_count, u.following_count) - l.friend_count)
                   <= 0.01 * COALESCE(l.following_count, u.following_count)), FALSE) AS complete,
               COALESCE(p.`partition`, l.`partition`, 0) AS `partition`,
               l.end_at AS collected_at,
               {_NUM.format(c="COALESCE(u.user_id, l.user_id)")} AS num
        FROM {users} AS u FULL OUTER JOIN latest AS l ON l.user_id = u.user_id
        LEFT JOIN {plan} AS p ON p.user_id = COALESCE(u.user_id, l.user_id)
    """
