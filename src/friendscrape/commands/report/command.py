"""`friendscrape report`: one self-contained HTML page a researcher can send on.

The headline (N of M users, ETA, cost so far), the per-partition table, statuses, lists
and failures, and charts of progress, throughput, friend counts and rate-limit pauses,
all from aggregates the store counts (``figures``): memory does not grow with the users.
Modules: ``figures`` reads the store, ``svg`` draws axes, ``charts`` and ``tables`` make
the parts, ``page`` puts them together.

The page goes to ``--output FILE``, or to stdout without it, as ``export`` does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from friendscrape import output_file
from friendscrape.commands.progress import waves
from friendscrape.commands.progress.figures import shown_store
from friendscrape.commands.report.figures import DEFAULT_TIER, Figures, gather_figures, pick_tier
from friendscrape.commands.report.page import render_page
from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.stores import opened_store, retried

__all__ = ["DEFAULT_TIER", "Figures", "build_page", "gather_figures", "render_page", "write_report"]

TITLE = "friendscrape progress"


async def build_page(
    settings: Settings, *, tier: str = DEFAULT_TIER, tiers: Path | None = None
) -> tuple[str, Figures]:
    """Read the store's aggregates and render the page; returns it and its figures."""
    priced, hours = pick_tier(tier, tiers)
    now = datetime.now(UTC)
    async with opened_store(store_config(settings), read_only=True) as store:
        figures = await retried(
            store_retry_policy(settings),
            "report",
            lambda: gather_figures(store, now=now, tier=priced, hours_per_month=hours),
        )
        notes = (*figures.status.notes, *await waves.wave_notes(store))
    status = replace(figures.status, store=shown_store(settings.store), notes=notes)
    figures = replace(figures, status=status)
    return render_page(figures, title=TITLE, generated_at=now), figures


async def write_report(
    settings: Settings,
    output: Path | None,
    *,
    tier: str = DEFAULT_TIER,
    tiers: Path | None = None,
) -> int:
    """The `report` command's work: the page to ``output``, or to stdout when None;
    returns the users collected."""
    refuse = output_file.store_files(settings.store)
    output_file.check(output, refuse=refuse)  # before the store is opened
    page, figures = await build_page(settings, tier=tier, tiers=tiers)
    with output_file.opened(output, refuse=refuse) as out:
        out.write(page)
    return figures.collected
