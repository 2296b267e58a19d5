"""A benchmark upstream that costs almost nothing: the simulator's pages, rendered once.

The CPU-per-page comparison (benchmarks/collector.py) runs a client flat out against a
local upstream at latency 0; the aiohttp simulator would then spend as much CPU per page
as the client and compete for the machine's cores. This server renders every page of
the first ``--users`` accounts of the simulator's graph once, with the simulator's own
renderers (MobileSite, XApi), and then answers each GET with bytes looked up by request
target: a few microseconds a page. It speaks just enough HTTP/1.1 for that (keep-alive,
Content-Length, no request bodies); a target it did not render gets a 404 and is counted.

    python benchmarks/prerendered.py --source twitter-mobile --users 150 --users-csv u.csv

prints ``READY <port> <pages>`` when listening, and ``MISSED <n>`` on SIGTERM/SIGINT.
Benchmarks only: the product never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from http import HTTPStatus
from math import ceil
from urllib.parse import quote

from friendscrape.simulator import SimConfig
from friendscrape.simulator.formats import write_users_csv
from friendscrape.simulator.graph import AccountKind, SyntheticGraph
from friendscrape.simulator.twitter_mobile import MobileSite, SiteResponse
from friendscrape.simulator.x_api import XApi

X_PAGE = 1000  # the x-api source's max_results
SOURCES = ("twitter-mobile", "x-api")


def _raw(page: SiteResponse) -> bytes:
    """The whole HTTP/1.1 response of one page."""
    reason = HTTPStatus(page.status).phrase
    head = [f"HTTP/1.1 {page.status} {reason}"]
    head += [f"{name}: {value}" for name, value in page.headers]
    head.append(f"Content-Length: {len(page.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + page.body


def render(graph: SyntheticGraph, source: str) -> dict[bytes, bytes]:
    """Every page a client collecting the graph's users from ``source`` asks for, by
    request target, as the simulator answers it."""
    pages: dict[bytes, bytes] = {}
    if source == "twitter-mobile":
        site = MobileSite(graph)
        for account in graph.accounts():
            path = f"/{account.screen_name}/following"
            pages[path.encode()] = _raw(site.following(account.screen_name, None))
            if account.kind is not AccountKind.OK:
                continue
            for page in range(1, ceil(account.following_count / site.page_size)):
                cursor = site.cursor(account, page)
                target = f"{path}?cursor={quote(cursor, safe='')}"
                pages[target.encode()] = _raw(site.following(account.screen_name, cursor))
    else:
        api = XApi(graph)
        for account in graph.accounts():
            path = f"/2/users/{account.user_id}/following?max_results={X_PAGE}"
            query = {"max_results": str(X_PAGE)}
            pages[path.encode()] = _raw(api.following(account.user_id, query, None))
            if account.kind is not AccountKind.OK:
                continue
            for offset in range(X_PAGE, account.following_count, X_PAGE):
                token = api.token(account, offset)
                target = f"{path}&pagination_token={quote(token, safe='')}"
                pages[target.encode()] = _raw(
                    api.following(account.user_id, {**query, "pagination_token": token}, None)
                )
    return pages


_MISSING = _raw(SiteResponse(404, b"not pre-rendered", (("Content-Type", "text/plain"),)))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: each request head in, one pre-built response out."""

    def __init__(self, pages: dict[bytes, bytes], missed: list[int]) -> None:
        self._pages = pages
        self._missed = missed
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        start = 0
        while (end := buffer.find(b"\r\n\r\n", start)) >= 0:
            line_end = buffer.find(b"\r\n", start)
            target = buffer[start:line_end].split(b" ", 2)[1]
            page = self._pages.get(target)
            if page is None:
                self._missed[0] += 1
                page = _MISSING
            assert self._transport is not None
            self._transport.write(page)
            start = end + 4
        self._buffer = buffer[start:]


async def serve(pages: dict[bytes, bytes], host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve ``pages`` until SIGTERM or SIGINT; print READY first and MISSED last."""
    loop = asyncio.get_running_loop()
    missed = [0]
    server = await loop.create_server(lambda: _Connection(pages, missed), host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound} {len(pages)}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    print(f"MISSED {missed[0]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=SOURCES, default="twitter-mobile")
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users-csv", help="also write the users file to import here")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    graph = SimConfig(users=args.users, seed=args.seed).make_graph()
    if args.users_csv:
        write_users_csv(graph, args.users_csv, args.source)
    asyncio.run(serve(render(graph, args.source), port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
