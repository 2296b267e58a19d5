"""Defaults that more than one layer states, written once: a setting's default and the
default of the part that takes it read the same number. Imports nothing."""

from __future__ import annotations

from typing import Final

CONCURRENCY: Final = 50
"""Users collected at once (``--concurrency``), and a limiter's cap when none is given."""
