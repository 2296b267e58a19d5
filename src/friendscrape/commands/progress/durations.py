"""Durations and windows in the words people read: ETAs, spans of data, window labels.

Shared by every command that shows a job's progress (status, estimate, report, the run's
progress bar), so one length of time reads the same wherever it is shown.
"""

from __future__ import annotations

import math


def window_label(seconds: float) -> str:
    """A window as people write it: ``60s``, ``90s``, ``15m``, ``1h``, ``36h``, ``1d``."""
    whole = round(seconds)
    if not math.isclose(seconds, whole) or whole < 120:
        return f"{seconds:g}s"
    if whole % 86400 == 0:
        return f"{whole // 86400}d"
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def span_words(seconds: float) -> str:
    """A span of data in words: ``45 s``, ``3.6 min``, ``2.5 h``, ``3.2 days``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def human_duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``12m``, ``40s``; ``-`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds <= 0:
        return "done"
    s = round(seconds)
    if s == 0:
        return "<1s"
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
