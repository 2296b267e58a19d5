"""The `waves` command: collect the same job again, in waves.

``waves new`` opens the job's next wave: every user is pending again in it, the plan,
the users and the platform are kept, and the earlier waves stay readable (``export
--wave W``, ``export --format changes``). Opening writes one row, whatever the job's size.
``waves list`` shows each wave: when it was opened, its first and last result, the users
done in it and how many of their lists changed since their previous result.
"""

from __future__ import annotations

import json

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.errors import UsageError
from friendscrape.stores import opened_store
from friendscrape.stores.base import WaveSummary, now_utc


async def open_next(settings: Settings) -> int:
    """Open the next wave; returns its number (nothing is counted: it takes a moment
    whatever the job's size).

    Refused while a run holds a partition: its results would be saved into the new wave
    for some users and the old one for others."""
    async with opened_store(store_config(settings)) as store:
        if not await store.partitions():
            msg = (
                "the job has no partition plan: import users and plan partitions first "
                "('friendscrape partitions plan --count N')"
            )
            raise UsageError(msg)
        now = now_utc()
        held = sorted(p for p, h in (await store.leases()).items() if not h.gone(now))
        if held:
            parts = ", ".join(str(p) for p in held)
            msg = (
                f"a run is collecting partition{'s' if len(held) > 1 else ''} {parts}: "
                "let it finish (or stop it) before opening the next wave"
            )
            raise UsageError(msg)
        return await store.open_wave(now)


async def list_waves(settings: Settings) -> list[WaveSummary]:
    """Every wave's figures (wave 1 first)."""
    async with opened_store(store_config(settings), read_only=True) as store:
        return await store.wave_summaries()


def _when(summary: WaveSummary, which: str) -> str:
    moment = getattr(summary, which)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def render(summaries: list[WaveSummary]) -> str:
    """The waves as a table for people."""
    head = ("wave", "opened (UTC)", "first result", "last result", "done", "ok", "changed")
    lines = [head]
    for s in summaries:
        lines.append(
            (
                str(s.wave),
                _when(s, "opened_at"),
                _when(s, "first_start"),
                _when(s, "last_end"),
                str(s.done),
                str(s.ok),
                "-" if s.wave == 1 else str(s.changed),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 4 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in lines
    )


def to_json(summaries: list[WaveSummary]) -> str:
    """The waves as JSON (a list, wave 1 first)."""
    return json.dumps([s.as_json() for s in summaries], indent=2)


def opened_text(wave: int) -> str:
    """What ``waves new`` prints."""
    return (
        f"opened wave {wave}: every user is pending in it; collect it with 'friendscrape "
        "run --partition N', see it with 'friendscrape waves list'"
    )
