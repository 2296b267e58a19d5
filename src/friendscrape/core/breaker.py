"""The circuit breaker: end a run whose users all fail the same upstream-wide way.

Some failures say nothing about the user and everything about the upstream or the
configuration: nothing listens at the base URL (``connect``), its host does not resolve
(``dns``), the TLS handshake fails (``tls``), every page is a generic 4xx such as a
mistyped path's 404 (``http_404``), every request lands on a login page
(``login_wall``), or every answer is a 200 that is not the platform's at all
(``not_platform``: a captive portal's page, an empty body, another service's JSON; an
upstream down in disguise). Saved as ``failed``, they would turn a whole partition into
rows that only ``--retry-failed`` reaches, and the run would exit 0.

The breaker watches the results in the order users finish. A user who failed one of
those ways is *held* (not yet saved). ``users`` such failures in a row with the same
cause trip it: the held users are dropped, so they stay pending, and the run ends with
``UpstreamDownError``. Any other outcome (a list, a not-found answer, a platform page
wrong in its items, a timeout, a 5xx after retries) shows the upstream answers: it
releases the held users to be saved as ``failed`` and starts the count again. A run
that ends while every user it finished is in one such streak (at least
``_WHOLE_RUN_MIN`` of them) trips as well, so a small partition is caught too.

Pure logic, no I/O: feed outcomes, save what it releases, stop when it trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

UNREACHABLE_KINDS: Final = frozenset({"connect", "dns", "tls"})
"""Fetch failure kinds that mean no connection could be opened: upstream-wide causes."""

_WHOLE_RUN_MIN: Final = 3
"""A run whose finished users (this many at least) all failed alike trips at its end;
one or two users failing is too little to blame the upstream for."""

_CAUSES: Final = {
    "connect": "cannot connect to {host} (nothing listening, or refused)",
    "dns": "the host name {host} does not resolve (DNS)",
    "tls": "the TLS handshake with {host} fails",
    "login_wall": "{host} answers every user with a login page",
    "not_platform": (
        "{host} answers with something that is not the platform's answer (an HTML page "
        "such as a captive portal's, an empty body, or JSON of another shape)"
    ),
}


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """``users``: consecutive same-cause failures that trip the breaker; 0 turns it off."""

    users: int


@dataclass(frozen=True, slots=True)
class Failure:
    """An upstream-wide failure of one user: its cause and the URL that showed it."""

    cause: str
    url: str


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the breaker tripped: the shared cause, how many users, an example URL."""

    cause: str
    users: int
    url: str

    def message(self) -> str:
        """One line for the user: the cause, an example URL, what to check."""
        parts = urlsplit(self.url)
        host = parts.netloc or self.url
        # Scheme, host and path only: a query may carry a cursor, and no source puts a
        # credential in a URL, but an example never needs more than the path.
        example = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else self.url
        template = _CAUSES.get(self.cause)
        if template is not None:
            what = template.format(host=host)
        else:
            status = self.cause.removeprefix("http_")
            # A 4xx the source could not read as an account's state (its parser reads
            # the platform's not-found and suspended answers before it gets here).
            what = f"{host} answers HTTP {status}, not an answer about the account"
        return (
            f"upstream down or wrong: {self.users} users in a row failed the same way: "
            f"{what} (e.g. {example}); they stay pending. Check --base-url and the "
            "upstream, then run again"
        )


@dataclass(frozen=True, slots=True)
class Verdict(Generic[T]):
    """What to do after an outcome: the results now safe to save, and a trip if any."""

    release: tuple[T, ...] = ()
    trip: Trip | None = None


class CircuitBreaker(Generic[T]):
    """Holds a streak of same-cause failures; trips at ``config.users`` of them."""

    def __init__(self, config: BreakerConfig) -> None:
        self._users = config.users
        self._held: list[T] = []
        self._streak: Failure | None = None  # the cause and first URL of the held streak
        self._other_outcomes = 0  # users finished outside any streak that tripped nothing
        self.tripped: Trip | None = None

    def observe(self, item: T, failure: Failure | None) -> Verdict[T]:
        """One user finished: ``failure`` is its upstream-wide failure, or None."""
        if self._users <= 0:
            return Verdict(release=(item,))
        if self.tripped is not None:
            # The run is ending; users still finishing are saved unless they failed the
            # way that tripped it (then they stay pending like the others).
            if failure is not None and failure.cause == self.tripped.cause:
                return Verdict()
            return Verdict(release=(item,))
        if failure is None:
            self._other_outcomes += 1
            return Verdict(release=(*self._take_held(), item))
        released: tuple[T, ...] = ()
        if self._streak is None or self._streak.cause != failure.cause:
            released = self._take_held()
            self._streak = failure
        self._held.append(item)
        if len(self._held) >= self._users:
            return Verdict(release=released, trip=self._trip())
        return Verdict(release=released)

    def finish(self) -> Verdict[T]:
        """The run has no more users: release the held ones, or trip if they are all."""
        if self._users <= 0 or self.tripped is not None or not self._held:
            return Verdict()
        if self._other_outcomes == 0 and len(self._held) >= min(self._users, _WHOLE_RUN_MIN):
            return Verdict(trip=self._trip())
        return Verdict(release=self._take_held())

    def _take_held(self) -> tuple[T, ...]:
        held = tuple(self._held)
        if held:
            # A released streak tripped nothing: those users count as ordinary outcomes.
            self._other_outcomes += len(held)
        self._held.clear()
        self._streak = None
        return held

    def _trip(self) -> Trip:
        assert self._streak is not None  # noqa: S101 - only called with a streak held
        self.tripped = Trip(self._streak.cause, len(self._held), self._streak.url)
        self._held.clear()
        return self.tripped
