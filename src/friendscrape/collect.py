"""Collect one user's following list: walk the pages in order, parse, end with a status."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from friendscrape.config import Settings
from friendscrape.errors import (
    FetchError,
    ParseError,
    RunAbortedError,
    TransientFetchError,
)
from friendscrape.fetch.http import HttpClient
from friendscrape.models import FriendList, Status, User
from friendscrape.redaction import Redactor
from friendscrape.sources.base import Source
from friendscrape.stats import RunStats

log = structlog.get_logger("friendscrape.collect")


class Collector:
    """Turns a User into a FriendList; every way a collection can end becomes a status."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        http: HttpClient,
        *,
        partition: int,
        stats: RunStats,
    ) -> None:
        self._settings = settings
        self._source = source
        self._http = http
        self._partition = partition
        self._stats = stats
        self._redactor = Redactor.from_settings(settings)

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

    async def collect(self, user: User) -> FriendList:
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
            return self._result(user, start, Status.FAILED, error=f"internal error: {exc!r}"[:2000])

    async def _collect(self, user: User, start: datetime) -> FriendList:
        reason = self._source.check_user(user)
        if reason is not None:
            return self._result(
                user, start, Status.INVALID, error=reason, following_count=user.following_count
            )
        names: list[str] = []
        ids: list[str] = []
        following = user.following_count
        cursor: str | None = None
        seen: set[str] = set()
        pages = 0
        limit = self._settings.max_friends
        try:
            while True:
                response = await self._http.fetch(self._source.page_request(user, cursor))
                page = self._source.parse(user, response)
                pages += 1
                self._stats.pages += 1
                if page.status is not Status.OK:
                    return self._result(
                        user,
                        start,
                        page.status,
                        error=page.detail,
                        following_count=following,
                        pages=pages,
                    )
                if pages == 1 and page.following_count is not None:
                    following = page.following_count
                names.extend(page.names)
                ids.extend(page.ids)
                if len(names) >= limit:
                    truncated = len(names) > limit or page.next_cursor is not None
                    return self._ok(
                        user,
                        start,
                        names[:limit],
                        ids[:limit],
                        following,
                        truncated=truncated,
                        pages=pages,
                    )
                if page.next_cursor is None:
                    return self._ok(
                        user, start, names, ids, following, truncated=False, pages=pages
                    )
                if page.next_cursor in seen or page.next_cursor == cursor:
                    msg = f"pagination loops back to an earlier page (cursor {page.next_cursor})"
                    raise ParseError(msg, url=response.url)
                if pages >= self._settings.max_pages:
                    msg = f"more than {self._settings.max_pages} pages; stopped walking"
                    raise ParseError(msg, url=response.url)
                if cursor is not None:
                    seen.add(cursor)
                cursor = page.next_cursor
        except TransientFetchError as exc:
            self._stats.errors[exc.kind] += 1
            error = f"{exc.kind} after retries: {exc} [{exc.url}]"
        except FetchError as exc:
            self._stats.errors["fetch"] += 1
            error = f"fetch: {exc} [{exc.url}]"
        except ParseError as exc:
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
        return self._result(
            user, start, Status.FAILED, error=error, following_count=following, pages=pages
        )

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
