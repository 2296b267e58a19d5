"""Collect one user's following list: walk the pages in order, parse, end with a status."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from friendscrape.config import Settings
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

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectConfig:
        """The collector's part of the settings."""
        return cls(
            max_friends=settings.max_friends,
            max_pages=settings.max_pages,
            redactor=Redactor.from_settings(settings),
        )


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
        try:
            return await self._collect(user, start)
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

    async def _collect(self, user: User, start: datetime) -> Outcome:
        reason = self._source.check_user(user)
        if reason is not None:
            return Outcome(
                self._result(
                    user, start, Status.INVALID, error=reason, following_count=user.following_count
                )
            )
        names: list[str] = []
        ids: list[str] = []
        friends: set[str] = set()  # ids (or names, when the platform gives no ids) listed
        following = user.following_count
        cursor: str | None = None
        seen: set[str] = set()
        pages = 0
        status: int | None = None  # of the last response
        failure: Failure | None = None
        limit = self._config.max_friends
        try:
            lookups = self._lookups
            if lookups is not None and lookups.needs_lookup(user):
                # Not looked up by the run beforehand (a caller collecting users one by
                # one): look up here, the id then lives as long as this collection.
                lookup = lookups.lookup_request([user])
                found = lookups.parse_lookup([user], await self._http.fetch(lookup))
                resolution = found[user.user_id]
                if resolution.account_id is None:
                    end = self._result(
                        user,
                        start,
                        resolution.status,
                        error=resolution.detail,
                        following_count=following,
                    )
                    return Outcome(end)
                user = dataclasses.replace(user, resolved_id=resolution.account_id)
            request = self._source.page_request(user, cursor)
            first_url = request.url
            while True:
                response = await self._http.fetch(request)
                status = response.status
                page = self._source.parse(user, response)
                pages += 1
                self._stats.pages += 1
                if response.url != request.url:
                    # After the parse, so a login page keeps its own class (login_wall).
                    self._check_landed(request.url, response.url)
                if page.status is not Status.OK:
                    return Outcome(
                        self._result(
                            user,
                            start,
                            page.status,
                            error=page.detail,
                            following_count=following,
                            pages=pages,
                        )
                    )
                if pages == 1 and page.following_count is not None:
                    following = page.following_count
                if not _add_new_friends(page, friends, names, ids) and page.next_cursor:
                    # Every name already listed, and yet a next page: an upstream serving
                    # the same names under fresh cursors would otherwise be walked to
                    # max_pages and saved as a list of repeats.
                    msg = (
                        f"page {pages} added no new friend (all {len(page.names)} already "
                        "listed): the upstream is looping"
                    )
                    raise ParseError(msg, url=response.url)
                if len(names) >= limit:
                    truncated = len(names) > limit or page.next_cursor is not None
                    return Outcome(
                        self._ok(
                            user,
                            start,
                            names[:limit],
                            ids[:limit],
                            following,
                            truncated=truncated,
                            pages=pages,
                        )
                    )
                if page.next_cursor is None:
                    return Outcome(
                        self._ok(user, start, names, ids, following, truncated=False, pages=pages)
                    )
                if page.next_cursor in seen or page.next_cursor == cursor:
                    msg = f"pagination loops back to an earlier page (cursor {page.next_cursor})"
                    raise ParseError(msg, url=response.url)
                if pages >= self._config.max_pages:
                    msg = f"more than {self._config.max_pages} pages; stopped walking"
                    raise ParseError(msg, url=response.url)
                if cursor is not None:
                    seen.add(cursor)
                cursor = page.next_cursor
                request = self._next_request(user, cursor, first_url, response.url)
        except TransientFetchError as exc:
            self._stats.errors[exc.kind] += 1
            error = f"{exc.kind} after retries: {exc} [{exc.url}]"
            if exc.kind in UNREACHABLE_KINDS:
                failure = Failure(exc.kind, exc.url)
        except FetchError as exc:
            self._stats.errors["fetch"] += 1
            error = f"fetch: {exc} [{exc.url}]"
        except LoginWallError as exc:
            self._stats.errors["login_wall"] += 1
            error = f"login_wall: {exc} [{exc.url}]"
            failure = Failure("login_wall", exc.url)
        except ParseError as exc:
            if status is not None and 400 <= status < 500:
                # A 4xx that is not the platform's own answer about the account (the
                # parser reads those): the URL or the upstream is wrong, not the user.
                # ``failed``, which --retry-failed retries, never ``not_found``.
                kind = f"http_{status}"
                self._stats.errors[kind] += 1
                error = f"{kind}: {exc} [{exc.url}]"
                failure = Failure(kind, exc.url)
            elif isinstance(exc, NotPlatformAnswerError):
                # A captive portal, an empty body, another API's JSON: says nothing of
                # the user. Recent users failing so too trip the breaker (pending, exit 5).
                self._stats.errors["not_platform"] += 1
                error = f"not_platform: {exc} [{exc.url}]"
                failure = Failure("not_platform", exc.url)
            else:
                self._stats.errors["parse"] += 1
                error = f"parse: {exc} [{exc.url}]" if exc.url else f"parse: {exc}"
        log.warning(
            "collect.failed",
            user_id=user.user_id,
            screen_name=user.screen_name,
            pages=pages,
            friends_so_far=len(names),
            error=error,
        )
        result = self._result(
            user, start, Status.FAILED, error=error, following_count=following, pages=pages
        )
        return Outcome(result, failure)

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
        names: list[str],
        ids: list[str],
        following: int | None,
        *,
        truncated: bool,
        pages: int,
    ) -> FriendList:
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
            pages=pages,
        )


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
