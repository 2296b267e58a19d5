"""A lower floor for CPU per page: raw asyncio streams, one keep-alive connection a worker.

The same collection as benchmarks/reference_aiohttp.py (same users, pages, extraction,
the same ``--max-names``)
with HTTP/1.1 written by hand: a GET line out, a status line, headers and a
Content-Length body in; nothing else of HTTP (no chunks, gzip, TLS, redirects), which is
why the product never does this. It shows what aiohttp's request path costs. Prints
``{"pages": N, "cpu_seconds": S, "names": K, ...}`` as that one does. Benchmarks only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import quote, urlsplit

from kernel_counts import Window, page_done
from reference_aiohttp import html_page, users_of, x_api_page


async def fetch(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, target: str
) -> tuple[int, bytes]:
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def collect(
    base: str, source: str, users: list[str], concurrency: int, max_names: int
) -> dict[str, float]:
    queue = list(reversed(users))
    counts = {"pages": 0, "names": 0}
    read = html_page if source == "twitter-mobile" else x_api_page
    split = urlsplit(base)
    host, port = split.hostname or "127.0.0.1", split.port or 80

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while queue:
            user, cursor, held = queue.pop(), None, 0
            while True:
                if source == "twitter-mobile":
                    target = f"/{user}/following" + (f"?cursor={cursor}" if cursor else "")
                else:
                    target = f"/2/users/{user}/following?max_results=1000"
                    target += f"&pagination_token={quote(cursor)}" if cursor else ""
                status, body = await fetch(reader, writer, split.netloc, target)
                counts["pages"] += 1
                page_done()
                if status != 200:
                    break
                names, cursor = read(body)
                counts["names"] += len(names)
                held += len(names)
                if not cursor or held >= max_names:
                    break
        writer.close()

    with Window() as window:
        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
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
