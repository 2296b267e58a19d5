"""Durations and windows in the words people read: ETAs, spans of data, window labels.

Shared by every command that shows a job's progress (status, estimate, report, the run's
progress bar), so one length of time reads the same wherever it is shown.
"""

from __future__ import annotations

import math

_DAY = 86400.0


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
    """A length of time in words (``days_words``) from its seconds: ``3.6 min``."""
    return days_words(seconds / _DAY)


def days_words(days: float) -> str:
    """A length of time in words, in the largest unit it reaches: ``14.20 days``,
    ``5.3 hours``, ``3.6 min``, ``40.0 s``; never ``0.00 days`` (``under 0.1 s``).

    The one way friendscrape says a length of time in words: the status table's span
    of data and the estimate's plans alike (``human_duration`` is the terse clock form).
    """
    if days >= 1:
        return f"{days:,.2f} days"
    hours = days * 24
    if hours >= 1:
        return f"{hours:.1f} hours"
    minutes = hours * 60
    if minutes >= 1:
        return f"{minutes:.1f} min"
    seconds = minutes * 60
    return f"{seconds:.1f} s" if seconds >= 0.1 else "under 0.1 s"


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
