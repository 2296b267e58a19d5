"""Look handles up before a run collects: each user once, the ids kept in the store.

A source that takes handles (``sources.base.Lookups``) names the users it must look up
first. Before the fetchers start, the run walks its pending users a store page at a
time, looks up those without an id (batches of ``lookup_batch``, at most
``concurrency`` requests at once, through the run's HTTP client and so its limiter),
saves the ids found with ``save_resolved`` and saves the users the look-up ended
(``not_found``, ``suspended``, or ``failed`` with the reason) as results at once. Only
then does collecting begin, reading the ids back with the pending users: a run killed
while collecting repeats no look-up, and one killed while looking up repeats at most the
look-ups of the store page under way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from friendscrape.errors import FetchError, ParseError, StoreTransientError, TransientFetchError
from friendscrape.fetch.http import HttpClient
from friendscrape.models import FriendList, Resolution, Status, User
from friendscrape.retry import RetryPolicy, retry_call
from friendscrape.sources.base import Lookups
from friendscrape.stores.base import RunStore

log = structlog.get_logger("friendscrape.core.resolve")

_PAGE = 500

Ended = Callable[[User, Status, str | None], FriendList]
"""Builds the result of a user the look-up ended (the collector's, so it is counted)."""


@dataclass(frozen=True, slots=True)
class LookupSummary:
    """What the look-up phase did: users looked up, requests sent, users it ended."""

    users: int = 0
    requests: int = 0
    ended: int = 0


class Resolver:
    """The look-up phase of one partition's run; see the module docstring."""

    def __init__(
        self,
        source: Lookups,
        http: HttpClient,
        store: RunStore,
        *,
        partition: int,
        concurrency: int,
        store_retry: RetryPolicy,
        ended: Ended,
    ) -> None:
        self._source = source
        self._http = http
        self._store = store
        self._partition = partition
        self._slots = asyncio.Semaphore(max(concurrency, 1))
        self._store_retry = store_retry
        self._ended = ended

    async def run(
        self, *, retry_failed: bool, limit: int | None, stop: asyncio.Event
    ) -> LookupSummary:
        """Look up every pending user of the partition that needs it (the first
        ``limit`` pending users only, when given); stops between store pages on ``stop``."""
        summary = LookupSummary()
        cursor: str | None = None
        seen = 0
        while not stop.is_set():
            page = await retry_call(
                lambda c=cursor: self._store.pending_users(  # type: ignore[misc]
                    self._partition, retry_failed=retry_failed, cursor=c, limit=_PAGE
                ),
                on=StoreTransientError,
                policy=self._store_retry,
                event="store.read_pending.retry",
            )
            users = page.users if limit is None else page.users[: max(limit - seen, 0)]
            seen += len(users)
            todo = [user for user in users if self._source.needs_lookup(user)]
            if todo:
                summary = await self._page(todo, summary)
            if page.cursor is None or (limit is not None and seen >= limit):
                break
            cursor = page.cursor
        if summary.users:
            log.info(
                "lookup.finished",
                users=summary.users,
                requests=summary.requests,
                ended=summary.ended,
            )
        return summary

    async def _page(self, users: list[User], summary: LookupSummary) -> LookupSummary:
        size = self._source.lookup_batch
        batches = [users[i : i + size] for i in range(0, len(users), size)]
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._batch(batch)) for batch in batches]
        ids: dict[str, str] = {}
        ended: list[FriendList] = []
        by_id = {user.user_id: user for user in users}
        for task in tasks:
            for user_id, found in task.result().items():
                if found.account_id is not None:
                    ids[user_id] = found.account_id
                else:
                    ended.append(self._ended(by_id[user_id], found.status, found.detail))
        # Saved before any of these users is collected: a run killed while collecting
        # then resumes without looking them up again.
        await self._saved("store.save_resolved.retry", lambda: self._store.save_resolved(ids))
        if ended:
            await self._saved("writer.retry", lambda: self._store.save(ended))
        return dataclasses.replace(
            summary,
            users=summary.users + len(users),
            requests=summary.requests + len(batches),
            ended=summary.ended + len(ended),
        )

    async def _saved(self, event: str, call: Callable[[], Awaitable[None]]) -> None:
        await retry_call(call, on=StoreTransientError, policy=self._store_retry, event=event)

    async def _batch(self, users: Sequence[User]) -> dict[str, Resolution]:
        """The look-up of ``users``; a look-up that cannot be read fails them all, with
        its reason kept (``--retry-failed`` looks them up again)."""
        async with self._slots:
            request = self._source.lookup_request(users)
            try:
                response = await self._http.fetch(request)
                return dict(self._source.parse_lookup(users, response))
            except TransientFetchError as exc:
                error = f"lookup: {exc.kind} after retries: {exc} [{exc.url}]"
            except (FetchError, ParseError) as exc:
                error = f"lookup: {exc} [{exc.url}]"
        log.warning("lookup.failed", users=len(users), error=error)
        return {user.user_id: Resolution(None, Status.FAILED, error) for user in users}
