"""Collect one user's following list: walk the pages in order, parse, end with a status."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import structlog

from friendscrape.core.breaker import UNREACHABLE_KINDS, Failure
from friendscrape.core.counters import RunCounters
from friendscrape.core.redaction import Redactor
from friendscrape.errors import (
    FetchError,
    LoginWallError,
    NotPlatformAnswerError,
    ParseError,
    RunAbortedError,
    TransientFetchError,
)
from friendscrape.fetch.http import HttpClient
from friendscrape.fetch.wire import PageRequest
from friendscrape.models import FriendList, Page, Status, User
from friendscrape.sources.base import InvalidURLError, Lookups, Source, other_list

log = structlog.get_logger("friendscrape.core.collect")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A user's result, and its upstream-wide failure (for the circuit breaker) if any."""

    result: FriendList
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class CollectConfig:
    """What the collector of one user needs: how far to walk, and the secrets to redact."""

    max_friends: int
    max_pages: int
    redactor: Redactor


class Collector:
    """Turns a User into a FriendList; every way a collection can end becomes a status."""

    def __init__(
        self,
        config: CollectConfig,
        source: Source,
        http: HttpClient,
        *,
        partition: int,
        stats: RunCounters,
    ) -> None:
        self._config = config
        self._source = source
        self._http = http
        self._partition = partition
        self._stats = stats
        self._redactor = config.redactor
        # Checked once: isinstance against a runtime Protocol costs microseconds a call.
        self._lookups: Lookups | None = source if isinstance(source, Lookups) else None

    def _result(self, user: User, start: datetime, status: Status, **fields: object) -> FriendList:
        self._stats.statuses[status.value] += 1
        self._stats.users_done += 1
        return FriendList(
            user_id=user.user_id,
            screen_name=user.screen_name,
            status=status,
            source=self._source.name,
            partition=self._partition,
            start_at=start,
            end_at=datetime.now(UTC),
            # The one place results are built: no secret an upstream echoes is saved.
            **self._redactor.fields(fields),  # type: ignore[arg-type]
        )

    def ended(self, user: User, status: Status, error: str | None) -> FriendList:
        """The result of a user whose handle look-up ended the collection (not found,
        suspended, failed), counted as every result is."""
        now = datetime.now(UTC)
        return self._result(user, now, status, error=error, following_count=user.following_count)

    async def collect(self, user: User) -> FriendList:
        """The user's result alone; see ``collect_outcome``."""
        return (await self.collect_outcome(user)).result

    async def collect_outcome(self, user: User) -> Outcome:
        """Walk every page of the user's list, up to max_friends; never raises.

        Named fetch and parse errors become ``failed`` with their reason. Anything else
        is a bug in friendscrape or a library, and still must not drop the user without
        a row (a fetcher task's exception is never read by anyone): it is logged as
        ``collect.crashed`` at error level with its traceback and saved as ``failed``,
        so ``--retry-failed`` collects the user once the bug is fixed.
        """
        start = datetime.now(UTC)
        walk = _Walk(user.following_count)
        # Both guards sit here, around the walk, rather than in a coroutine of their own:
        # every coroutine between the task and its fetch is one more frame that each page's
        # wake-ups pass through. The inner guard's row is built inside the outer one, so a
        # bug while saving a failure is still caught as one.
        try:
            reason = self._source.check_user(user)
            if reason is not None:
                end = self._result(
                    user, start, Status.INVALID, error=reason, following_count=user.following_count
                )
                return Outcome(end)
            try:
                return await self._walk(user, start, walk)
            except (FetchError, ParseError) as exc:
                return self._failed(user, start, walk, exc)
        except RunAbortedError:
            raise  # no user can be collected (rejected credentials): the run must end
        except Exception as exc:  # a bug: see the docstring
            self._stats.errors["internal"] += 1
            log.exception(
                "collect.crashed",
                user_id=user.user_id,
                screen_name=user.screen_name,
                error=repr(exc),
            )
            error = f"internal error: {exc!r}"[:2000]
            return Outcome(self._result(user, start, Status.FAILED, error=error))

    async def _walk(self, user: User, start: datetime, walk: _Walk) -> Outcome:
        """Fetch and parse the user's pages in order until the list ends, reaches
        max_friends or a page tells the account's state; ParseError from a guard when the
        upstream leads the walk astray (another list, a loop, no end in sight)."""
        lookups = self._lookups
        if lookups is not None and lookups.needs_lookup(user):
            looked_up = await self._look_up(lookups, user, start)
            if isinstance(looked_up, FriendList):
                return Outcome(looked_up)
            user = looked_up
        limit = self._config.max_friends
        names, ids, friends = walk.names, walk.ids, walk.friends
        request = self._source.page_request(user, None)
        first_url = request.url
        # Run once a page, and CPU per page is benchmarked: nothing is allocated or awaited
        # on the way through but by the fetch and the parse. The guards that raise live in
        # _Walk, _check_landed and _next_request; whom their errors blame, in _ending_of.
        while True:
            response = await self._http.fetch(request)
            walk.status = response.status
            page = self._source.parse(user, response)
            walk.pages += 1
            self._stats.pages += 1
            if response.url != request.url:
                # After the parse, so a login page keeps its own class (login_wall).
                self._check_landed(request.url, response.url)
            if page.status is not Status.OK:
                end = self._result(
                    user,
                    start,
                    page.status,
                    error=page.detail,
                    following_count=walk.following,
                    pages=walk.pages,
                )
                return Outcome(end)
            if walk.pages == 1 and page.following_count is not None:
                walk.following = page.following_count
            if not _add_new_friends(page, friends, names, ids) and page.next_cursor:
                raise walk.looping(page, response.url)
            if len(names) >= limit:
                truncated = len(names) > limit or page.next_cursor is not None
                kept = self._ok(
                    user,
                    start,
                    names[:limit],
                    ids[:limit],
                    walk,
                    truncated=truncated,
                    joined=_whole_page_text(page, walk, min(len(names), limit)),
                )
                return Outcome(kept)
            if page.next_cursor is None:
                joined = _whole_page_text(page, walk, len(names))
                kept_names: Sequence[str] = names
                kept_ids: Sequence[str] = ids
                if walk.pages == 1 and len(names) == len(page.names):
                    # The list is its first page whole: the result keeps the page's own
                    # tuples rather than copies of the walk's lists (equal, as every
                    # friend of the page was new).
                    kept_names, kept_ids = page.names, page.ids
                return Outcome(
                    self._ok(
                        user, start, kept_names, kept_ids, walk, truncated=False, joined=joined
                    )
                )
            cursor = walk.advance(page.next_cursor, self._config.max_pages, response.url)
            request = self._next_request(user, cursor, first_url, response.url)

    async def _look_up(self, lookups: Lookups, user: User, start: datetime) -> User | FriendList:
        """The user with its account id, or its result when the look-up ends it (not found,
        suspended...). Only for a user the run did not look up beforehand (a caller
        collecting users one by one): the id then lives as long as this collection."""
        found = lookups.parse_lookup([user], await self._http.fetch(lookups.lookup_request([user])))
        resolution = found[user.user_id]
        if resolution.account_id is None:
            return self._result(
                user,
                start,
                resolution.status,
                error=resolution.detail,
                following_count=user.following_count,
            )
        return dataclasses.replace(user, resolved_id=resolution.account_id)

    def _failed(
        self, user: User, start: datetime, walk: _Walk, exc: FetchError | ParseError
    ) -> Outcome:
        """The ``failed`` result of a walk a named error ended, saying how far it got, and
        the failure the circuit breaker weighs when the error blames the upstream."""
        ending = _ending_of(exc, walk.status)
        self._stats.errors[ending.kind] += 1
        log.warning(
            "collect.failed",
            user_id=user.user_id,
            screen_name=user.screen_name,
            pages=walk.pages,
            friends_so_far=len(walk.names),
            error=ending.error,
        )
        result = self._result(
            user,
            start,
            Status.FAILED,
            error=ending.error,
            following_count=walk.following,
            pages=walk.pages,
        )
        return Outcome(result, ending.failure)

    def _next_request(self, user: User, cursor: str, first_url: str, url: str) -> PageRequest:
        """The request for the page at ``cursor``, which the upstream's page at ``url``
        gave; ParseError when it cannot be built or asks for another list than the first
        page's (another account, endpoint or host: only paging parameters may change)."""
        source = self._source
        try:
            request = source.page_request(user, cursor)
            problem = other_list(
                first_url, request.url, source.paging_params, case_blind=source.case_blind_paths
            )
        except InvalidURLError:
            msg = f"next page link is not a valid URL ({cursor[:100]!r})"
            raise ParseError(msg, url=url) from None
        except ValueError as exc:
            # The source refuses the cursor (empty, a link it cannot use): the upstream's.
            raise ParseError(f"next page link is not usable: {exc}", url=url) from None
        if problem is not None:
            msg = f"next page link names {problem}; not followed"
            raise ParseError(msg, url=url)
        return request

    def _check_landed(self, asked: str, landed: str) -> None:
        """ParseError when a redirect took the request for ``asked`` to another list."""
        source = self._source
        try:
            problem = other_list(
                asked, landed, source.paging_params, case_blind=source.case_blind_paths
            )
        except InvalidURLError:
            problem = "an invalid URL"
        if problem is not None:
            msg = f"redirected to {problem}: not this user's list"
            raise ParseError(msg, url=landed)

    def _ok(
        self,
        user: User,
        start: datetime,
        names: Sequence[str],
        ids: Sequence[str],
        walk: _Walk,
        *,
        truncated: bool,
        joined: tuple[str, str] | None = None,
    ) -> FriendList:
        following = walk.following
        self._stats.friends += len(names)
        if following is not None and not truncated and len(names) < following:
            # Profile counts include accounts the list no longer shows (suspended,
            # deactivated); keep the list but make the gap visible.
            log.debug(
                "collect.short_list",
                user_id=user.user_id,
                listed=len(names),
                following_count=following,
            )
        return self._result(
            user,
            start,
            Status.OK,
            friend_names=tuple(names),
            friend_ids=tuple(ids),
            following_count=following,
            truncated=truncated,
            pages=walk.pages,
            joined=joined,
        )


def _whole_page_text(page: Page, walk: _Walk, kept: int) -> tuple[str, str] | None:
    """The parser's joined text of ``page`` when the list is that first page whole (most
    x-api lists: one page of up to 1,000), else None: the store joins the list itself."""
    return page.joined if walk.pages == 1 and kept == len(page.names) else None


def _add_new_friends(page: Page, friends: set[str], names: list[str], ids: list[str]) -> bool:
    """Append the page's friends not listed yet, each at its first position; False when
    the page lists names but none of them is new."""
    keys = page.ids or page.names
    if not friends:
        # A first page (most lists have one): one set, built in place.
        friends.update(keys)
        if len(friends) == len(keys):
            names.extend(page.names)
            ids.extend(page.ids)
            return True
        friends.clear()  # a repeat on the page: item by item below
    else:
        fresh = set(keys)
        if len(fresh) == len(keys) and friends.isdisjoint(fresh):
            # The common case, in C: every friend on the page is new and listed once.
            friends |= fresh
            names.extend(page.names)
            ids.extend(page.ids)
            return True
    added = False
    for index, key in enumerate(keys):
        if key in friends:
            continue
        friends.add(key)
        names.append(page.names[index])
        if page.ids:
            ids.append(page.ids[index])
        added = True
    return added or not keys


class _Walk:
    """One user's walk so far, and the guards that keep an upstream from leading it in
    circles. Held outside the loop so that a walk an error ends can still say how far it
    got (pages, friends so far, the status of the last answer) in the user's row."""

    __slots__ = ("cursor", "following", "friends", "ids", "names", "pages", "seen", "status")

    def __init__(self, following: int | None) -> None:
        self.following = following  # the profile's count, until a first page gives its own
        self.names: list[str] = []
        self.ids: list[str] = []
        self.friends: set[str] = set()  # ids (or names, when the platform gives no ids) listed
        self.cursor: str | None = None  # of the page being walked; None for the first
        self.seen: set[str] = set()  # cursors of the pages walked before it
        self.pages = 0
        self.status: int | None = None  # of the last response

    def looping(self, page: Page, url: str) -> ParseError:
        """The error of a page that added no new friend and yet links to a next one: an
        upstream serving the same names under fresh cursors would otherwise be walked to
        max_pages and saved as a list of repeats."""
        msg = (
            f"page {self.pages} added no new friend (all {len(page.names)} already "
            "listed): the upstream is looping"
        )
        return ParseError(msg, url=url)

    def advance(self, next_cursor: str, max_pages: int, url: str) -> str:
        """Move on to the page at ``next_cursor``, which the page from ``url`` gave;
        ParseError when it leads back to a page walked already, or past max_pages."""
        if next_cursor in self.seen or next_cursor == self.cursor:
            msg = f"pagination loops back to an earlier page (cursor {next_cursor})"
            raise ParseError(msg, url=url)
        if self.pages >= max_pages:
            raise ParseError(f"more than {max_pages} pages; stopped walking", url=url)
        if self.cursor is not None:
            self.seen.add(self.cursor)
        self.cursor = next_cursor
        return next_cursor


class _Ending(NamedTuple):
    """How a named error ends a user's collection."""

    kind: str  # counted in the run's errors
    error: str  # kept as the user's error, with the URL that showed it
    failure: Failure | None  # upstream-wide, for the circuit breaker; None when the user's own


def _ending_of(exc: FetchError | ParseError, status: int | None) -> _Ending:
    """Whom ``exc`` blames, the user or the upstream; ``status`` is that of the last answer
    (None before any page). The order matters: a login page is ``login_wall`` whatever its
    status, and any other parse error of a 4xx is the upstream's ``http_4xx``."""
    if isinstance(exc, TransientFetchError):
        # Retried already; only a connection that could not be opened is upstream-wide.
        failure = Failure(exc.kind, exc.url) if exc.kind in UNREACHABLE_KINDS else None
        return _Ending(exc.kind, f"{exc.kind} after retries: {exc} [{exc.url}]", failure)
    if isinstance(exc, FetchError):
        return _Ending("fetch", f"fetch: {exc} [{exc.url}]", None)
    if isinstance(exc, LoginWallError):
        return _Ending(
            "login_wall", f"login_wall: {exc} [{exc.url}]", Failure("login_wall", exc.url)
        )
    if status is not None and 400 <= status < 500:
        # A 4xx that is not the platform's own answer about the account (the parser reads
        # those): the URL or the upstream is wrong, not the user. ``failed``, which
        # --retry-failed retries, never ``not_found``.
        kind = f"http_{status}"
        return _Ending(kind, f"{kind}: {exc} [{exc.url}]", Failure(kind, exc.url))
    if isinstance(exc, NotPlatformAnswerError):
        # A captive portal, an empty body, another API's JSON: says nothing of the user.
        # Recent users failing so too trip the breaker (pending, exit 5).
        error = f"not_platform: {exc} [{exc.url}]"
        return _Ending("not_platform", error, Failure("not_platform", exc.url))
    return _Ending("parse", f"parse: {exc} [{exc.url}]" if exc.url else f"parse: {exc}", None)
