"""What status and report say of waves once a job has a second one: the current wave,
which their figures count, and the earlier waves' totals."""

from __future__ import annotations

from datetime import datetime

from friendscrape.stores.base import WaveStore


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


async def wave_notes(store: WaveStore) -> list[str]:
    """What status and report add under their figures once a job has a second wave: the
    current wave (the figures count its results) and the earlier waves' totals."""
    if await store.current_wave() <= 1:
        return []
    summaries = await store.wave_summaries(times=False)  # the counts, from totals
    current, earlier = summaries[-1], summaries[:-1]
    totals = "; ".join(
        f"wave {s.wave}: {s.done:,} done, {s.ok:,} ok"
        + (f", {s.changed:,} lists changed" if s.wave > 1 else "")
        for s in earlier
    )
    note = (
        f"wave {current.wave} (opened {_when(current.opened_at)} UTC): the figures count "
        f"its results ({current.changed:,} lists changed so far). Earlier waves: {totals}"
    )
    return [note]
