"""The HTTP client: one keep-alive session, a timeout on every request, capped bodies,
no off-host redirects, and retries (``friendscrape.retry``) of named transient failures only."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

import aiohttp
from yarl import URL

from friendscrape.errors import PermanentFetchError, TransientFetchError
from friendscrape.fetch.retry_after import parse_retry_after
from friendscrape.fetch.wire import PageRequest, RawResponse
from friendscrape.retry import RetryPolicy, retry_call

_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """What the client needs of the settings: timeouts, the User-Agent, the body cap,
    and how hard to retry a page."""

    request_timeout: float
    connect_timeout: float
    user_agent: str
    max_page_bytes: int
    retry: RetryPolicy
    base_auth: OriginAuth | None = None


@dataclass(frozen=True, slots=True)
class OriginAuth:
    """The Basic ``Authorization`` value of the user name and password taken out of the
    base URL, sent to that URL's origin only (an HTTP-auth proxy in front of the
    upstream), and never over a request's own Authorization header."""

    origin: tuple[str, str | None, int | None]
    header: str = field(repr=False)

    @classmethod
    def for_url(cls, url: str, header: str) -> OriginAuth:
        """``header`` sent to the origin of ``url``."""
        return cls(_origin(URL(url)), header)

    def add_to(self, url: URL, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` with the Authorization value when ``url`` is of the origin and
        carries no Authorization of its own."""
        if _origin(url) != self.origin or any(k.lower() == "authorization" for k in headers):
            return headers
        return {**headers, "Authorization": self.header}


@dataclass(slots=True)
class FetchCounts:
    """What a client sent: requests, and retries by kind of failure; the run owns one
    and shows it in progress events."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    """Responses that were HTTP 429 (retried or not)."""


@dataclass(frozen=True, slots=True)
class Permit:
    """A limiter's leave for one request: headers to add (a credential, never shown in a
    repr), the credential's fingerprint, and the limiter's own bookkeeping number."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    credential: str | None = None
    seq: int = -1


class Limiter(Protocol):
    """Per-host pacing: wait for a slot before a request, learn from each response."""

    async def acquire(self, host: str) -> Permit:
        """Wait until a request to ``host`` may start."""

    def release(
        self,
        host: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
        latency: float,
        permit: Permit | None = None,
    ) -> None:
        """A request to ``host`` ended (status None: it failed without a response).

        May raise a RunAbortedError (PauseTooLongError: the upstream asked for a pause
        longer than the run may wait); it then ends the request instead of its outcome.
        """

    def paused(self) -> Mapping[str, float]:
        """The hosts paused now, each with the monotonic time its pause ends."""

    def learned_rates(self) -> Mapping[str, float]:
        """Requests/s learned from 429s, by host (or host/credential); empty if none."""

    def paused_seconds(self) -> float:
        """Seconds hosts have spent paused so far (rate limits, spent quotas), summed."""


class NoLimiter:
    """No pacing: concurrency alone bounds the request rate."""

    async def acquire(self, host: str) -> Permit:
        """Never waits."""
        return Permit()

    def release(
        self,
        host: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
        latency: float,
        permit: Permit | None = None,
    ) -> None:
        """Learns nothing."""

    def paused(self) -> Mapping[str, float]:
        """Never pauses."""
        return {}

    def learned_rates(self) -> Mapping[str, float]:
        """Learns nothing."""
        return {}

    def paused_seconds(self) -> float:
        """Never pauses."""
        return 0.0


def _connection_kind(exc: aiohttp.ClientConnectionError) -> str:
    """``dns``, ``tls`` or ``connect`` when no connection could be opened, else
    ``connection`` (dropped mid-way): the circuit breaker tells the first three apart."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    return "connection"


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return (url.scheme, url.host, url.port)


def _kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, TransientFetchError) else "unknown"


def _kind_field(exc: BaseException) -> dict[str, object]:
    return {"kind": _kind(exc)}


def _retry_after(exc: BaseException) -> float | None:
    return exc.retry_after if isinstance(exc, TransientFetchError) else None


class HttpClient:
    """Fetch pages for every source of a run through one aiohttp session."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        counts: FetchCounts | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._config = config
        self._counts = counts if counts is not None else FetchCounts()
        self._limiter: Limiter = limiter if limiter is not None else NoLimiter()
        self._session: aiohttp.ClientSession | None = None
        self._borrowed = False  # a view of another client's session: never opens or closes it

    def counting(self, counts: FetchCounts) -> HttpClient:
        """A client on this one's open session and limiter that counts into ``counts``:
        a worker's partitions (``run --partition next``) keep one session (its open
        connections) and one limiter (the rates it learned from 429s), each partition's
        requests counted as its own. Entering and leaving the view neither opens nor
        closes the session; this client does, when it is left."""
        view = HttpClient(self._config, counts=counts, limiter=self._limiter)
        view._session = self._session
        view._borrowed = True
        return view

    async def __aenter__(self) -> Self:
        if self._borrowed:
            return self
        s = self._config
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=s.request_timeout, sock_connect=s.connect_timeout),
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30),
            # No source needs cookies; without a jar no response is scanned for them.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": s.user_agent},
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None and not self._borrowed:
            await session.close()

    async def fetch(self, request: PageRequest) -> RawResponse:
        """GET with retries; raises TransientFetchError once the retry budget is spent.

        Most pages succeed at once, and they skip the retry machinery: a tenacity
        AsyncRetrying per page costs more CPU than parsing a user item, and leaves a
        reference cycle for the garbage collector every time.
        """
        try:
            return await self.get_once(request)
        except TransientFetchError as exc:
            if self._config.retry.attempts <= 1:
                raise
            first_failure = exc
        return await self._retry(request, first_failure)

    async def _retry(self, request: PageRequest, first_failure: TransientFetchError) -> RawResponse:
        """Attempts 2 and on, after ``first_failure`` (counted as attempt 1)."""
        return await retry_call(
            lambda: self.get_once(request),
            on=TransientFetchError,
            policy=self._config.retry,
            event="fetch.retry",
            first_failure=first_failure,
            # The server's own Retry-After wins over our backoff when it asks for longer.
            wait_hint=_retry_after,
            on_retry=self._count_retry,
            error_fields=_kind_field,
            level="debug",
            url=request.url,
        )

    def _count_retry(self, exc: BaseException, attempt: int, wait: float) -> None:
        self._counts.retries[_kind(exc)] += 1

    async def get_once(self, request: PageRequest) -> RawResponse:
        """One attempt, following same-host redirects; classifies every failure."""
        if self._session is None:
            msg = "HttpClient used outside 'async with'"
            raise RuntimeError(msg)
        try:
            url = URL(request.url, encoded=True)
            _origin(url)  # yarl reads the port only when asked: a bad one raises here
        except ValueError as exc:
            # A URL a source took from an upstream's page (a next link) that cannot be read.
            msg = f"not a valid URL: {exc}"
            raise PermanentFetchError(msg, url=request.url[:300]) from None
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._get(url, request.headers)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location")
            if not location:
                msg = f"redirect {response.status} without a Location header"
                raise PermanentFetchError(msg, url=str(url))
            try:
                target = url.join(URL(location))
                _origin(target)
            except ValueError as exc:
                # A bad port (99999, -1), an unclosed "[": the upstream's bytes, not a bug.
                msg = f"redirect to an invalid URL ({location[:100]!r}: {exc})"
                raise PermanentFetchError(msg, url=str(url)) from None
            if _origin(target) != _origin(url):
                msg = f"redirected to another host ({target.host}); not followed"
                raise PermanentFetchError(msg, url=str(url))
            url = target
        msg = f"more than {_MAX_REDIRECTS} redirects"
        raise PermanentFetchError(msg, url=str(url))

    async def _get(self, url: URL, headers: Mapping[str, str]) -> RawResponse:
        assert self._session is not None  # noqa: S101 - checked by the caller
        host = url.host or ""
        permit = await self._limiter.acquire(host)
        if permit.headers:
            headers = {**headers, **permit.headers}
        if self._config.base_auth is not None:
            headers = self._config.base_auth.add_to(url, headers)
        started = time.monotonic()
        status: int | None = None
        resp_headers: Mapping[str, str] = {}
        self._counts.requests += 1
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                body = await self._read_capped(resp, str(url))
        except TimeoutError:
            raise TransientFetchError(
                f"no response within {self._config.request_timeout:g}s",
                url=str(url),
                kind="timeout",
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise TransientFetchError(
                f"truncated response: {exc}", url=str(url), kind="connection"
            ) from None
        except aiohttp.ClientConnectionError as exc:
            raise TransientFetchError(
                f"connection error: {exc or type(exc).__name__}",
                url=str(url),
                kind=_connection_kind(exc),
            ) from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError) as exc:
            # A URL taken from an upstream's page (a next link) that cannot be sent: no
            # host, not http(s), a control character. Checked before sending, so no
            # response came; retrying the same URL cannot help.
            raise PermanentFetchError(
                f"not a valid URL: {exc or type(exc).__name__}", url=str(url)[:300]
            ) from None
        except aiohttp.ClientResponseError as exc:
            # The server's bytes are not HTTP (a bad status line or header): a broken
            # proxy or a half-written response; retried like a dropped connection.
            raise TransientFetchError(
                f"malformed HTTP response: {exc.message or type(exc).__name__}",
                url=str(url),
                kind="connection",
            ) from None
        finally:
            # A pause over the maximum raises here (PauseTooLongError), replacing the
            # request's outcome: the run must end rather than retry into that pause.
            self._limiter.release(
                host,
                status=status,
                headers=resp_headers,
                latency=time.monotonic() - started,
                permit=permit,
            )
        if status == 429:
            self._counts.rate_limited += 1
            raise TransientFetchError(
                "rate limited (HTTP 429)",
                url=str(url),
                kind="rate_limited",
                retry_after=parse_retry_after(resp_headers.get("retry-after")),
            )
        if status >= 500 or status == 408:
            raise TransientFetchError(
                f"server error (HTTP {status})",
                url=str(url),
                kind="server_error",
                retry_after=parse_retry_after(resp_headers.get("retry-after")),
            )
        return RawResponse(url=str(url), status=status, headers=resp_headers, body=body)

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        cap = self._config.max_page_bytes
        if resp.content_length is not None and resp.content_length > cap:
            msg = f"response body of {resp.content_length} bytes exceeds the {cap}-byte cap"
            raise PermanentFetchError(msg, url=url)
        if resp.content_length is not None and "Content-Encoding" not in resp.headers:
            # A length under the cap, and nothing to decompress: the body cannot grow past
            # it (the HTTP parser stops at Content-Length), so read it in one call.
            return await resp.read()
        body = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            body += chunk
            if len(body) > cap:
                msg = f"response body exceeds the {cap}-byte cap"
                raise PermanentFetchError(msg, url=url)
        return bytes(body)
