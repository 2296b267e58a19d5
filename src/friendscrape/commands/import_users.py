"""The `users import` command: read users from CSV (`user_id,screen_name[,following_count]`),
reporting every bad row, and save the good ones."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from friendscrape.config import Settings
from friendscrape.errors import UsageError
from friendscrape.models import User
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import IMPORT_BATCH, ImportResult

REQUIRED = ("user_id", "screen_name")
OPTIONAL = ("following_count",)
_MAX_FIELD = 1024


@dataclass
class ImportReport:
    """Rows read, and every rejected or collapsed row with its line number."""

    rows: int = 0
    bad: list[str] = field(default_factory=list)
    duplicates: int = 0
    """Counted by the store, which sees every id (this report never holds them all)."""


def _check(row: dict[str | None, str | None], line: int) -> User | str:
    user_id = (row.get("user_id") or "").strip()
    name = (row.get("screen_name") or "").strip()
    count_text = (row.get("following_count") or "").strip()
    if None in row:  # DictReader files surplus fields under the key None
        return f"line {line}: more fields than the header names"
    if not user_id:
        return f"line {line}: empty user_id"
    if not name:
        return f"line {line}: empty screen_name for user_id {user_id!r}"
    if any(ch.isspace() for ch in user_id) or len(user_id) > _MAX_FIELD:
        return f"line {line}: user_id {user_id[:40]!r} has spaces or is too long"
    if len(name) > _MAX_FIELD:
        return f"line {line}: screen_name is too long"
    count: int | None = None
    if count_text:
        if not (count_text.isascii() and count_text.isdigit()):
            return f"line {line}: following_count {count_text[:40]!r} is not a whole number"
        count = int(count_text)
    return User(user_id, name, count)


def read_users(path: Path, report: ImportReport, chunk: int = 10_000) -> Iterator[list[User]]:
    """Yield chunks of valid users, reading the file line by line; bad rows go to ``report``."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        msg = f"cannot read {str(path)!r}: {exc.strerror or exc}"
        raise UsageError(msg) from None
    with handle:
        # One csv reader per physical line: a screen name never holds a line break, so a
        # quote left open (``2,"bob``) must reject its own line, not swallow every row after
        # it into one user as a multi-line field would.
        lines = enumerate(handle, 1)
        try:
            header = next((_fields(text) for _, text in lines), [])
        except (csv.Error, UnicodeDecodeError) as exc:
            msg = f"{path.name}: not a readable CSV file ({exc})"
            raise UsageError(msg) from None
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
        if missing or unknown:
            msg = (
                f"{path.name}: header must be user_id,screen_name[,following_count]; "
                f"got {','.join(header) or 'nothing'}"
            )
            raise UsageError(msg)
        batch: list[User] = []
        line = 1
        try:
            for line, text in lines:
                try:
                    fields = _fields(text)
                except csv.Error as exc:
                    report.rows += 1
                    report.bad.append(f"line {line}: quotes do not pair up on this line ({exc})")
                    continue
                if not fields:
                    continue  # a blank line, as csv.DictReader skips it
                report.rows += 1
                row: dict[str | None, str | None] = dict(zip(header, fields, strict=False))
                if len(fields) > len(header):
                    row[None] = ",".join(fields[len(header) :])
                checked = _check(row, line)
                if isinstance(checked, str):
                    report.bad.append(checked)
                    continue
                batch.append(checked)
                if len(batch) >= chunk:
                    yield batch
                    batch = []
        except UnicodeDecodeError as exc:
            report.bad.append(f"line {line + 1}: unreadable ({exc}); the rest was not read")
        if batch:
            yield batch


def _fields(text: str) -> list[str]:
    """The fields of one line; csv.Error when a quoted field is left open at its end."""
    return next(csv.reader((text,), strict=True), [])


async def import_users(settings: Settings, path: Path) -> tuple[ImportReport, ImportResult]:
    """Import a CSV of users; valid rows are saved even when others are bad. The file is
    streamed into the store (never held in memory), then merged at once; each remote
    step is made again while it fails transiently (re-importing users is safe)."""
    report = ImportReport()
    async with opened_store(settings, create=True) as store:
        result = await store.import_stream(
            read_users(path, report, chunk=IMPORT_BATCH), again=partial(retried, settings)
        )
    report.duplicates = result.duplicates
    return report, ImportResult(
        read=report.rows, added=result.added, updated=result.updated, duplicates=result.duplicates
    )
