"""CSV rows as every export writes them: line feeds end lines, and a value holding a
carriage return or a line feed is quoted.

The csv module quotes only the characters of its own line end: with ``"\\n"`` lines, a
value holding a bare ``"\\r"`` went out unquoted, and readers that take a carriage return
for a line end (pandas, Python's csv, spreadsheets) split the row there. Rows holding one
are written by a writer with ``"\\r\\n"`` lines, which quotes both, and end with ``"\\n"``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TextIO


class CsvRows:
    """A ``csv.writer`` with ``"\\n"`` line ends that quotes carriage returns too."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lines = csv.writer(out, lineterminator="\n")
        self._held = io.StringIO()
        self._quoting = csv.writer(self._held, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row (values as the csv module writes them)."""
        values = row if isinstance(row, list | tuple) else list(row)
        if any(isinstance(v, str) and "\r" in v for v in values):
            self.write_quoting(values)
        else:
            self._lines.writerow(values)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write each row."""
        for row in rows:
            self.writerow(row)

    def write_plain(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows the caller knows hold no carriage return (a fast path)."""
        self._lines.writerows(rows)

    def write_quoting(self, row: Iterable[Any]) -> None:
        """Write one row whose values may hold carriage returns."""
        self._held.seek(0)
        self._held.truncate()
        self._quoting.writerow(row)
        self._out.write(self._held.getvalue()[:-2] + "\n")
