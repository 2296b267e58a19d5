"""Parsing alone: CPU per page of friendscrape's parsers beside a bare parse of the same pages.

The pages are the simulator's own (rendered once, as benchmarks/prerendered.py serves
them): 150 accounts' mobile-site pages of 20 names, 1,500 accounts' X API pages of up to
1,000. For each source, three turns of:

- friendscrape's parser, with every check it makes (src/friendscrape/parse/);
- the bare parse of benchmarks/reference_aiohttp.py (a tree and two selector walks; or
  ``json.loads`` and a list of usernames), no checks;
- for the HTML source, building lexbor's tree alone: no parser of these pages can cost
  less.

It prints microseconds per page (min and median of the turns) and friendscrape's ratio
to the bare parse. Young garbage is collected every 10,000 allocations, as in a run.
Figures come from simulator pages on the machine at hand: compare ratios, not absolutes.

    python benchmarks/parsers.py
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from friendscrape.errors import ParseError
from friendscrape.parse import twitter_mobile, x_api
from friendscrape.simulator import SimConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prerendered import render
from reference_aiohttp import html_page, x_api_page

USERS = {"twitter-mobile": 150, "x-api": 1500}
TURNS = 3

Page = tuple[bytes, int, str]


def pages(source: str) -> list[Page]:
    """Every page a collection of the source's accounts fetches: body, status, URL."""
    out = []
    for target, raw in render(SimConfig(users=USERS[source], seed=7).make_graph(), source).items():
        head, _, body = raw.partition(b"\r\n\r\n")
        out.append((body, int(head.split(b" ", 2)[1]), f"http://127.0.0.1{target.decode()}"))
    return out


def per_page(read: Callable[[Page], object], batch: list[Page]) -> float:
    """Microseconds of CPU per page of ``read`` over ``batch``."""
    started = time.process_time()
    for page in batch:
        with contextlib.suppress(ParseError):
            read(page)
    return (time.process_time() - started) / len(batch) * 1e6


def ours(source: str) -> Callable[[Page], object]:
    if source == "twitter-mobile":
        return lambda p: twitter_mobile.parse_following_page(p[0], status=p[1], url=p[2])
    return lambda p: x_api.parse_following_page(p[0], status=p[1], url=p[2])


def bare(source: str) -> Callable[[Page], object]:
    read = html_page if source == "twitter-mobile" else x_api_page
    return lambda p: read(p[0]) if p[1] == 200 else None


def main() -> int:
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    print(f"CPU per page of parsing alone, simulator pages (us; {TURNS} turns; min / median)")
    for source in USERS:
        batch = pages(source)
        readers = {"friendscrape": ours(source), "bare parse": bare(source)}
        if source == "twitter-mobile":
            readers["tree only"] = lambda p: LexborHTMLParser(p[0])
        us: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(TURNS):
            for name, read in readers.items():  # alternating, so load moves all alike
                us[name].append(per_page(read, batch))
        ratios = [a / b for a, b in zip(us["friendscrape"], us["bare parse"], strict=True)]
        print(f"  {source} ({len(batch):,} pages)")
        for name, figures in us.items():
            print(f"    {name:>14} {min(figures):7.1f} {statistics.median(figures):7.1f}")
        print(f"    friendscrape / bare parse: {min(ratios):.2f} / {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
