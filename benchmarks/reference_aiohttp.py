"""The floor for CPU per page: a bare aiohttp + selectolax (or json) client, no checks.

It collects the same users from the same upstream as friendscrape does in
benchmarks/collector.py: ``--concurrency`` workers each walk one user's pages at a time,
keep the names and follow the next cursor; no limiter, store, retry or validation. It
asks for the pages friendscrape asks for, so that the two are compared on the same mix:
a user's walk stops once it holds ``--max-names`` names (friendscrape's max_friends,
whose default keeps a list to 2,000 names, 100 HTML pages), and a name that cannot be a
screen name is not asked for (friendscrape ends such a user without a request).
Prints ``{"pages": N, "cpu_seconds": S, "names": K, ...}``: CPU is this process's
user+sys time over the collection, with what the kernel saw of it (kernel_counts.py).
Benchmarks only: the product never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
import time
from urllib.parse import quote

import aiohttp
from selectolax.lexbor import LexborHTMLParser

from kernel_counts import Window, page_done

# friendscrape's screen-name check (friendscrape.parse.twitter_mobile.SCREEN_NAME_RE).
SCREEN_NAME = re.compile(r"[A-Za-z0-9_]{1,15}")


def users_of(path: str, source: str) -> list[str]:
    """The users of the floor's CSV that friendscrape sends a request for."""
    column = "screen_name" if source == "twitter-mobile" else "user_id"
    with open(path, newline="", encoding="utf-8") as rows:  # noqa: PTH123
        users = [row[column] for row in csv.DictReader(rows)]
    if source == "twitter-mobile":
        users = [user for user in users if SCREEN_NAME.fullmatch(user)]
    return users


def html_page(body: bytes) -> tuple[list[str], str | None]:
    tree = LexborHTMLParser(body)
    names = [a.attributes["name"] or "" for a in tree.css("table.user-item td.screenname a[name]")]
    more = tree.css_first("div.w-button-more a[href]")
    href = more.attributes.get("href") if more is not None else None
    return names, href.partition("cursor=")[2] if href else None


def x_api_page(body: bytes) -> tuple[list[str], str | None]:
    doc = json.loads(body)
    return [item["username"] for item in doc.get("data", ())], doc.get("meta", {}).get("next_token")


async def collect(
    base: str, source: str, users: list[str], concurrency: int, max_names: int
) -> dict[str, float]:
    queue = list(reversed(users))
    counts = {"pages": 0, "names": 0}
    read = html_page if source == "twitter-mobile" else x_api_page

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            user, cursor, held = queue.pop(), None, 0
            while True:
                if source == "twitter-mobile":
                    url = f"{base}/{user}/following" + (f"?cursor={cursor}" if cursor else "")
                else:
                    url = f"{base}/2/users/{user}/following?max_results=1000"
                    url += f"&pagination_token={quote(cursor)}" if cursor else ""
                async with session.get(url) as response:
                    body = await response.read()
                counts["pages"] += 1
                page_done()
                if response.status != 200:
                    break
                names, cursor = read(body)
                counts["names"] += len(names)
                held += len(names)
                if not cursor or held >= max_names:
                    break

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        with Window() as window:
            started = time.process_time()
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
            cpu = time.process_time() - started
        return {**counts, "cpu_seconds": cpu, **window.figures()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--source", choices=("twitter-mobile", "x-api"), required=True)
    parser.add_argument("--users-csv", required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--max-names", type=int, default=2000)
    args = parser.parse_args()
    users = users_of(args.users_csv, args.source)
    result = asyncio.run(collect(args.base, args.source, users, args.concurrency, args.max_names))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
