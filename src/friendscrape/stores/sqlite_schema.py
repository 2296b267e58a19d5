"""Schema steps the SQLite store's parts share when a store is opened to write."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping


def add_columns(conn: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """Add each of ``columns`` (name -> SQL type and default) that ``table`` lacks: stores
    made by earlier versions gain them in place, their rows untouched."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns.items():
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
