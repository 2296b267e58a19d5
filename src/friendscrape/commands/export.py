"""The `export` command: results as JSON lines (one object per user) or a CSV edge list
for networkx and pandas.

Every format carries the same identity: the friend's name, its platform id where the
source gives one (``friend_ids`` in JSON lines, ``friend_id`` in CSV, empty when
unknown), and the ``source`` that collected it."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from friendscrape.config import Settings
from friendscrape.errors import UsageError
from friendscrape.models import FriendList
from friendscrape.stores import opened_store

FORMATS = ("jsonl", "csv")


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """Write to stdout, or to a temporary file renamed into place only when complete."""
    if path is None:
        yield sys.stdout
        return
    tmp = path.with_name(f".{path.name}.partial")
    try:
        handle = tmp.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        msg = f"cannot write {str(path)!r}: {exc.strerror or exc}"
        raise UsageError(msg) from None
    try:
        with handle:
            yield handle
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


async def export(results: AsyncIterator[FriendList], fmt: str, path: Path | None) -> int:
    """Write every result; returns how many users were written."""
    if fmt not in FORMATS:
        msg = f"unknown export format {fmt!r}: choose jsonl or csv"
        raise UsageError(msg)
    count = 0
    with _output(path) as out:
        if fmt == "jsonl":
            async for result in results:
                out.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
                count += 1
        else:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["user_id", "screen_name", "friend_name", "friend_id", "source"])
            async for result in results:
                # Sources without ids (twitter-mobile) leave friend_id empty.
                ids = (
                    result.friend_ids if len(result.friend_ids) == len(result.friend_names) else ()
                )
                for index, name in enumerate(result.friend_names):
                    friend_id = ids[index] if ids else ""
                    writer.writerow(
                        [result.user_id, result.screen_name, name, friend_id, result.source]
                    )
                count += 1
    return count


async def export_results(settings: Settings, fmt: str, output: Path | None) -> int:
    """Export every result row."""
    async with opened_store(settings, read_only=True) as store:
        return await export(store.results(), fmt, output)
