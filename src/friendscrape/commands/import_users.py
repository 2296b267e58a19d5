"""The `users import` command: read users from CSV (`user_id,screen_name[,following_count]`),
reporting every bad row, and save the good ones."""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

from friendscrape.commands import job
from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.errors import UsageError
from friendscrape.models import User
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import IMPORT_BATCH, ImportResult

REQUIRED = ("user_id", "screen_name")
OPTIONAL = ("following_count",)
_MAX_FIELD = 1024
MAX_LINE = csv.field_size_limit()
"""Characters a line may hold: the csv module's field limit (128 KiB), read as the line's.
A good row is a few thousand characters at most; a longer line is rejected whole, and
never read into memory whole (a file with no line breaks could be gigabytes)."""
MAX_COUNT = 2**63 - 1
"""The largest following_count: both stores keep it as a signed 64-bit integer."""
_INVISIBLE_OK = {"\u200c", "\u200d"}
"""Format characters IDNA allows inside a domain label (ZWNJ, ZWJ), so in an instance's name."""


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
    for column, text in (("user_id", user_id), ("screen_name", name)):
        bad = _control(text)
        if bad is not None:
            return (
                f"line {line}: {column} {text[:40]!r} holds control or invisible character "
                f"U+{ord(bad):04X}, which no platform's ids or names have"
            )
    count: int | None = None
    if count_text:
        if not (count_text.isascii() and count_text.isdigit()):
            return f"line {line}: following_count {count_text[:40]!r} is not a whole number"
        # Checked by length first: int() of thousands of digits is refused (or slow).
        digits = count_text.lstrip("0") or "0"
        if len(digits) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:
            return (
                f"line {line}: following_count {count_text[:40]!r} out of range "
                f"(at most {MAX_COUNT})"
            )
        count = int(digits)
    return User(user_id, name, count)


def _control(text: str) -> str | None:
    """The first character of ``text`` that no id or screen name can hold: controls (C0,
    DEL, C1: NUL, ESC, CR...), line and paragraph separators, and invisible format
    characters (bidi overrides, BOM, soft hyphen), which would reach URLs, stores and log
    lines unseen. Letters of any script stay, as do ZWNJ/ZWJ (see _INVISIBLE_OK)."""
    for ch in text:
        if ch.isascii():
            if ch < " " or ch == "\x7f":
                return ch
        elif unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Cs"} and (
            ch not in _INVISIBLE_OK
        ):
            return ch
    return None


def read_users(path: Path, report: ImportReport, chunk: int = 10_000) -> Iterator[list[User]]:
    """Yield chunks of valid users, reading the file line by line; bad rows go to ``report``."""
    try:
        # Lines end at LF only (a CRLF's CR is kept and read as the line's end): a lone CR
        # inside a line must not split it, or a broken row's second half (`7,"a` CR
        # `b",1`) would import as a user of its own.
        handle = path.open(newline="\n", encoding="utf-8-sig")
    except OSError as exc:
        msg = f"cannot read {str(path)!r}: {exc.strerror or exc}"
        raise UsageError(msg) from None
    with handle:
        # One csv reader per physical line: a screen name never holds a line break, so a
        # quote left open (``2,"bob``) must reject its own line, not swallow every row after
        # it into one user as a multi-line field would.
        lines = enumerate(_bounded_lines(handle), 1)
        try:
            header = next((_fields(text or "") for _, text in lines), [])
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
                if text is None:
                    report.rows += 1
                    report.bad.append(
                        f"line {line}: longer than the limit of {MAX_LINE:,} characters"
                    )
                    continue
                if "\r" in text.rstrip("\r\n"):
                    report.rows += 1
                    report.bad.append(
                        f"line {line}: holds a carriage return (CR) inside the line, which "
                        "no platform's ids or names have"
                    )
                    continue
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


def _bounded_lines(handle: TextIO) -> Iterator[str | None]:
    """The file's lines (each ending at LF, as the handle is opened); None for a line
    longer than MAX_LINE, whose rest is skipped in pieces of that size."""
    while text := handle.readline(MAX_LINE + 1):
        if len(text) <= MAX_LINE or text.endswith(("\n", "\r")):
            yield text
            continue
        while (rest := handle.readline(MAX_LINE)) and not rest.endswith(("\n", "\r")):
            pass
        yield None


def _fields(text: str) -> list[str]:
    """The fields of one line; csv.Error when a quoted field is left open at its end."""
    return next(csv.reader((text,), strict=True), [])


async def import_users(settings: Settings, path: Path) -> tuple[ImportReport, ImportResult]:
    """Import a CSV of users; valid rows are saved even when others are bad. The file is
    streamed into the store (never held in memory), then merged at once; each remote
    step is made again while it fails transiently (re-importing users is safe). The
    settings' source, when given, is recorded first as the job's platform (another one
    already the job's is a UsageError, and nothing is imported)."""
    report = ImportReport()
    async with opened_store(store_config(settings), create=True) as store:
        if settings.source is not None:
            # Before any row is read: users of another platform never enter the job.
            platform = settings.source
            await retried(
                store_retry_policy(settings),
                "record platform",
                lambda: job.settle_for_import(store, platform),
            )
        result = await store.import_stream(
            read_users(path, report, chunk=IMPORT_BATCH),
            again=partial(retried, store_retry_policy(settings)),
        )
    report.duplicates = result.duplicates
    return report, ImportResult(
        read=report.rows, added=result.added, updated=result.updated, duplicates=result.duplicates
    )
