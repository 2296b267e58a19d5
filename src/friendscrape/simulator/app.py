"""The simulator's HTTP server: the mobile site's routes, latency, faults, truth and stats.

Routes:

- ``GET /{screen_name}/following[?cursor=C]``: a page of the site (``twitter_mobile``),
  after ``latency`` seconds, unless a fault is drawn for it.
- ``GET /2/users/{id}/following``: X API v2 (``x_api``);
  ``GET /xrpc/app.bsky.graph.getFollows``: Bluesky (``bluesky``);
  ``GET /api/v1/accounts/{id}/following``: Mastodon (``mastodon``); the same graph,
  latency and faults (fault bodies in JSON).
- ``GET /_sim/truth/{screen_name}``: ``SyntheticGraph.expected()`` as JSON.
- ``GET /_sim/stats``: request counters as JSON (``SimStats.snapshot()``).
- anything else: a generic 404 (``404: Not Found``, as a web server answers a path it
  does not serve), not any platform's own "does not exist" answer: a mistyped base URL
  must look like one.

Every generated screen name is at least five characters and the hostile ones start with
``zz_``, so ``_sim`` is never a screen name, and the control routes never take the
``/{name}/following`` shape anyway.

Faults are shares of page requests, drawn from a hash of the request's path and query
and of how many times that same URL already drew a fault. So the draw does not depend
on the order in which concurrent requests arrive, a retry of a failed URL gets a fresh
draw, and at rate 1.0 every request gets the fault. One uniform number picks at most
one fault: ``error_rate`` (HTTP 500), then ``rate_limit_rate`` (HTTP 429 with
``Retry-After: retry_after``), ``drop_rate`` (connection closed, no response) and
``hang_rate`` (no answer until the server shuts down).
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

from aiohttp import web

from friendscrape.simulator import ratelimit
from friendscrape.simulator.bluesky import Bluesky
from friendscrape.simulator.graph import SyntheticGraph
from friendscrape.simulator.mastodon import Mastodon
from friendscrape.simulator.twitter_mobile import HTML_TYPE, MobileSite, SiteResponse
from friendscrape.simulator.x_api import XApi

CONTROL_PREFIX: Final = "/_sim"
"""Path prefix of the truth and stats routes."""

_T_FAULT: Final = 50
_SHUTDOWN_TIMEOUT: Final = 5.0

_ERROR_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>Twitter / Error</title></head>"
    b'<body class="error-page"><div class="system">Something is technically wrong.</div>'
    b"</body></html>\n"
)
_RATE_LIMIT_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>Twitter / Rate limit</title></head>"
    b'<body class="error-page"><div class="system">Rate limit exceeded. Please try again '
    b"later.</div></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes the simulated site; the same config serves the same pages."""

    users: int = 1000
    seed: int = 7
    mean_friends: float = 550.0
    latency: float = 0.3
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    drop_rate: float = 0.0
    hang_rate: float = 0.0
    hostile: bool = False
    page_size: int = 20
    rate_limit: str | None = None
    rate_limit_style: str = "twitter"
    wave: int = 1
    churn: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_limit is not None:
            ratelimit.parse_rate_limit(self.rate_limit)
        ratelimit.RateLimitStyle(self.rate_limit_style)  # ValueError when unknown
        rates = {
            "error_rate": self.error_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "drop_rate": self.drop_rate,
            "hang_rate": self.hang_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                msg = f"{name} must be between 0 and 1, got {rate}"
                raise ValueError(msg)
        if sum(rates.values()) > 1.0 + 1e-9:
            msg = "error, rate-limit, drop and hang rates must add up to at most 1"
            raise ValueError(msg)
        if self.latency < 0:
            msg = f"latency must be >= 0, got {self.latency}"
            raise ValueError(msg)
        if self.retry_after < 0:
            msg = f"retry_after must be >= 0, got {self.retry_after}"
            raise ValueError(msg)
        if self.page_size < 1:
            msg = f"page_size must be >= 1, got {self.page_size}"
            raise ValueError(msg)
        if self.users < 0:
            msg = f"users must be >= 0, got {self.users}"
            raise ValueError(msg)
        if self.wave < 1 or not 0.0 <= self.churn <= 1.0:
            msg = f"wave must be >= 1 and churn between 0 and 1, got {self.wave}, {self.churn}"
            raise ValueError(msg)

    def make_graph(self) -> SyntheticGraph:
        """The graph this config describes."""
        return SyntheticGraph(
            self.users,
            seed=self.seed,
            mean_friends=self.mean_friends,
            hostile=self.hostile,
            wave=self.wave,
            churn=self.churn,
        )


class Fault(StrEnum):
    """A fault injected instead of a page."""

    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    DROP = "drop"
    HANG = "hang"


class FaultPlan:
    """Which page requests get a fault, drawn deterministically per URL and attempt."""

    def __init__(self, config: SimConfig, graph: SyntheticGraph) -> None:
        self._graph = graph
        cuts: list[tuple[float, Fault]] = []
        total = 0.0
        for rate, fault in (
            (config.error_rate, Fault.ERROR),
            (config.rate_limit_rate, Fault.RATE_LIMIT),
            (config.drop_rate, Fault.DROP),
            (config.hang_rate, Fault.HANG),
        ):
            if rate > 0:
                total += rate
                cuts.append((total, fault))
        self._cuts = tuple(cuts)
        # Only URLs that drew a fault are remembered, so memory follows the fault count.
        self._attempts: dict[str, int] = {}

    def draw(self, url_key: str) -> Fault | None:
        """The fault for this request of ``url_key`` (path and query), or None."""
        if not self._cuts:
            return None
        attempt = self._attempts.get(url_key, 0)
        h = self._graph.hash(_T_FAULT, zlib.crc32(url_key.encode()) | attempt << 32)
        u = (h >> 11) * (1.0 / (1 << 53))
        for cut, fault in self._cuts:
            if u < cut:
                self._attempts[url_key] = attempt + 1
                return fault
        return None


class SimStats:
    """Live request counters; the control routes are counted apart from ``total``.

    Kinds: ``first_page`` (following without cursor), ``next_page`` (with a cursor),
    ``lookup`` (a handle look-up), ``other`` (any other path). Outcomes: the HTTP status
    as a string, ``dropped`` or ``hung``. ``looked_up`` counts each handle asked for
    (lower case), so a test can tell that none was looked up twice.
    """

    def __init__(self) -> None:
        self.total = 0
        self.control = 0
        self.by_kind: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_kind_status: Counter[tuple[str, str]] = Counter()
        self.looked_up: Counter[str] = Counter()

    def record(self, kind: str, outcome: str) -> None:
        """Count one request to the site of ``kind`` that ended with ``outcome``."""
        self.total += 1
        self.by_kind[kind] += 1
        self.by_status[outcome] += 1
        self.by_kind_status[kind, outcome] += 1

    @property
    def pages(self) -> int:
        """Requests for following pages, whatever their outcome."""
        return self.by_kind["first_page"] + self.by_kind["next_page"]

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        nested: dict[str, dict[str, int]] = {}
        for (kind, outcome), count in sorted(self.by_kind_status.items()):
            nested.setdefault(kind, {})[outcome] = count
        return {
            "total": self.total,
            "pages": self.pages,
            "control": self.control,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "by_kind_status": nested,
            "looked_up": dict(sorted(self.looked_up.items())),
        }


@dataclass(slots=True)
class _State:
    """What the handlers share: one per application."""

    config: SimConfig
    graph: SyntheticGraph
    site: MobileSite
    x_api: XApi
    bluesky: Bluesky
    mastodon: Mastodon
    faults: FaultPlan
    stats: SimStats
    closing: asyncio.Event


_STATE: Final = web.AppKey("friendscrape_simulator", _State)


def build_app(config: SimConfig, graph: SyntheticGraph | None = None) -> web.Application:
    """The aiohttp application serving ``graph`` (built from ``config`` when None)."""
    graph = graph if graph is not None else config.make_graph()
    app = web.Application()
    app[_STATE] = _State(
        config=config,
        graph=graph,
        site=MobileSite(graph, config.page_size),
        x_api=XApi(graph),
        bluesky=Bluesky(graph),
        mastodon=Mastodon(graph),
        faults=FaultPlan(config, graph),
        stats=SimStats(),
        closing=asyncio.Event(),
    )
    app.router.add_get(f"{CONTROL_PREFIX}/truth/{{name}}", _truth)
    app.router.add_get(f"{CONTROL_PREFIX}/stats", _stats)
    app.router.add_get("/{name}/following", _following)
    app.router.add_get("/2/users/{id}/following", _x_following)
    app.router.add_get("/2/users/by", _x_users_by)
    app.router.add_get("/api/v1/accounts/lookup", _mastodon_lookup)
    app.router.add_get("/xrpc/app.bsky.graph.getFollows", _bsky_follows)
    app.router.add_get("/api/v1/accounts/{id}/following", _mastodon_following)
    app.router.add_route("*", "/{tail:.*}", _other)
    if config.rate_limit is not None:
        spec = ratelimit.parse_rate_limit(config.rate_limit)
        ratelimit.install(app, spec, config.rate_limit_style, app[_STATE].stats)
    app.on_shutdown.append(_wake_hung)
    return app


def app_stats(app: web.Application) -> SimStats:
    """The live counters of an application made by ``build_app``."""
    return app[_STATE].stats


async def _wake_hung(app: web.Application) -> None:
    """Let hung handlers end so shutdown does not wait for them."""
    app[_STATE].closing.set()


def _drop(request: web.Request) -> web.Response:
    """Close the connection; the response returned is never sent."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response()


async def _following(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    query = request.query
    kind = "next_page" if "cursor" in query else "first_page"
    return await _serve(
        request,
        kind,
        lambda: state.site.following(request.match_info["name"], query.get("cursor")),
        json_faults=False,
    )


async def _x_following(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    query = request.query
    kind = "next_page" if "pagination_token" in query else "first_page"
    return await _serve(
        request,
        kind,
        lambda: state.x_api.following(
            request.match_info["id"], query, request.headers.get("Authorization")
        ),
    )


async def _x_users_by(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    query = request.query
    state.stats.looked_up.update(query.get("usernames", "").lower().split(","))
    authorization = request.headers.get("Authorization")
    return await _serve(request, "lookup", lambda: state.x_api.users_by(query, authorization))


async def _mastodon_lookup(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    acct = request.query.get("acct", "")
    state.stats.looked_up[acct.lower()] += 1
    return await _serve(request, "lookup", lambda: state.mastodon.lookup(acct))


async def _bsky_follows(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    kind = "next_page" if "cursor" in request.query else "first_page"
    return await _serve(request, kind, lambda: state.bluesky.get_follows(request.query))


async def _mastodon_following(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    query = request.query
    kind = "next_page" if "max_id" in query else "first_page"
    origin = str(request.url.origin())
    return await _serve(
        request,
        kind,
        lambda: state.mastodon.following(request.match_info["id"], query, origin),
    )


_JSON_ERROR: Final = b'{"error": "InternalServerError", "message": "Internal Server Error"}'
_JSON_RATE_LIMIT: Final = b'{"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}'


async def _serve(
    request: web.Request,
    kind: str,
    answer: Callable[[], SiteResponse],
    *,
    json_faults: bool = True,
) -> web.StreamResponse:
    """A page from ``answer``, or the fault drawn for this request, after the latency."""
    state = request.app[_STATE]
    content_type = "application/json" if json_faults else HTML_TYPE
    error_body = _JSON_ERROR if json_faults else _ERROR_PAGE
    rate_body = _JSON_RATE_LIMIT if json_faults else _RATE_LIMIT_PAGE
    fault = state.faults.draw(request.path_qs)
    if fault is Fault.HANG:
        state.stats.record(kind, "hung")
        await state.closing.wait()
        return _drop(request)
    response: web.Response
    if fault is Fault.ERROR:
        state.stats.record(kind, "500")
        response = web.Response(status=500, body=error_body, headers={"Content-Type": content_type})
    elif fault is Fault.RATE_LIMIT:
        state.stats.record(kind, "429")
        response = web.Response(
            status=429,
            body=rate_body,
            headers={"Content-Type": content_type, "Retry-After": str(state.config.retry_after)},
        )
    elif fault is Fault.DROP:
        state.stats.record(kind, "dropped")
        if state.config.latency > 0:
            await asyncio.sleep(state.config.latency)
        return _drop(request)
    else:
        page = answer()
        state.stats.record(kind, str(page.status))
        response = web.Response(status=page.status, body=page.body, headers=dict(page.headers))
    if state.config.latency > 0:
        await asyncio.sleep(state.config.latency)
    return response


async def _other(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    state.stats.record("other", "404")
    return web.Response(status=404, text="404: Not Found")


async def _truth(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    state.stats.control += 1
    return web.json_response(state.graph.expected(request.match_info["name"]))


async def _stats(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    state.stats.control += 1
    return web.json_response(state.stats.snapshot())


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on ``base_url`` (no trailing slash)."""

    base_url: str
    config: SimConfig
    graph: SyntheticGraph
    stats: SimStats
    site: MobileSite

    def following_url(self, screen_name: str, cursor: str | None = None) -> str:
        """The URL of a following page on this simulator."""
        url = f"{self.base_url}/{screen_name}/following"
        return url if cursor is None else f"{url}?cursor={cursor}"

    def truth_url(self, screen_name: str) -> str:
        """The URL of ``screen_name``'s ground truth (JSON)."""
        return f"{self.base_url}{CONTROL_PREFIX}/truth/{screen_name}"

    @property
    def stats_url(self) -> str:
        """The URL of the request counters (JSON)."""
        return f"{self.base_url}{CONTROL_PREFIX}/stats"

    def describe(self) -> dict[str, Any]:
        """The base URL and config, for a log line."""
        return {"base_url": self.base_url, **asdict(self.config)}


def _base_url(host: str, port: int) -> str:
    if host in {"", "0.0.0.0"}:  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def run_simulator(
    config: SimConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve ``config``'s site on ``host:port`` (0: a free port) for the ``async with``.

    On exit, hung requests are released and the server stops within a few seconds.
    """
    app = build_app(config)
    state = app[_STATE]
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        bound_port = int(sock.getsockname()[1])
        yield RunningSimulator(
            base_url=_base_url(host, bound_port),
            config=config,
            graph=state.graph,
            stats=state.stats,
            site=state.site,
        )
    finally:
        await runner.cleanup()
