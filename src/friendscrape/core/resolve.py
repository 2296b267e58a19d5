"""Look handles up as a run feeds its users: each user once, the ids kept in the store.

A source that takes handles (``sources.base.Lookups``) names the users it must look up
first. The run's feeder reads its pending users a store page at a time; before it hands
a page's users to the fetchers, ``Resolver.resolve`` looks up those without an id
(batches of ``lookup_batch``, at most ``concurrency`` requests at once, through the
run's HTTP client and so its limiter), saves the ids found with ``save_resolved`` and
saves the users the look-up ended (``not_found``, ``suspended``, or ``failed`` with the
reason) as results at once. A run killed while collecting a page has that page's ids in
the store and resumes with no second look-up; one killed during a page's look-ups
repeats at most those. A users file of ids alone costs nothing more: no extra read.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import structlog

from friendscrape.core.breaker import UNREACHABLE_KINDS
from friendscrape.errors import (
    FetchError,
    LoginWallError,
    NotPlatformAnswerError,
    ParseError,
    StoreTransientError,
    TransientFetchError,
)
from friendscrape.fetch.http import HttpClient
from friendscrape.models import FriendList, Resolution, Status, User
from friendscrape.retry import RetryPolicy, retry_call
from friendscrape.sources.base import Lookups
from friendscrape.stores.base import RunStore

log = structlog.get_logger("friendscrape.core.resolve")

Ended = Callable[[User, Status, str | None], FriendList]
"""Builds the result of a user the look-up ended (the collector's, so it is counted)."""


class Resolver:
    """The look-ups of one partition's run; see the module docstring."""

    def __init__(
        self,
        source: Lookups,
        http: HttpClient,
        store: RunStore,
        *,
        concurrency: int,
        store_retry: RetryPolicy,
        ended: Ended,
    ) -> None:
        self._source = source
        self._http = http
        self._store = store
        self._slots = asyncio.Semaphore(max(concurrency, 1))
        self._store_retry = store_retry
        self._ended = ended

    async def resolve(self, users: Sequence[User]) -> tuple[list[User], int]:
        """``users`` to collect, ids set, and how many the look-ups ended (saved)."""
        todo = [user for user in users if self._source.needs_lookup(user)]
        if not todo:
            return list(users), 0
        ids, ended = await self._page(todo)
        gone = {result.user_id for result in ended}
        ready = [
            dataclasses.replace(user, resolved_id=ids[user.user_id])
            if user.user_id in ids
            else user
            for user in users
            if user.user_id not in gone
        ]
        return ready, len(ended)

    async def _page(self, users: list[User]) -> tuple[dict[str, str], list[FriendList]]:
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
        # them then resumes without looking them up again.
        await self._saved("store.save_resolved.retry", lambda: self._store.save_resolved(ids))
        if ended:
            await self._saved("writer.retry", lambda: self._store.save(ended))
        log.info("lookup.page", users=len(users), requests=len(batches), ended=len(ended))
        return ids, ended

    async def _saved(self, event: str, call: Callable[[], Awaitable[None]]) -> None:
        await retry_call(call, on=StoreTransientError, policy=self._store_retry, event=event)

    async def _batch(self, users: Sequence[User]) -> dict[str, Resolution]:
        """The look-up of ``users``; a look-up that cannot be read fails them all, with
        its reason kept (``--retry-failed`` looks them up again).

        A failure that says nothing of the users but much of the upstream (cannot
        connect, a login wall, an answer that is not the platform's) fails none of them:
        they go on unresolved, each collector looks its user up again and hands that
        failure to the circuit breaker, which leaves them pending when recent users all
        fail alike (exit 5) instead of a partition of ``failed`` rows."""
        async with self._slots:
            request = self._source.lookup_request(users)
            try:
                response = await self._http.fetch(request)
                return dict(self._source.parse_lookup(users, response))
            except TransientFetchError as exc:
                error = f"lookup: {exc.kind} after retries: {exc} [{exc.url}]"
                upstream_wide = exc.kind in UNREACHABLE_KINDS
            except (LoginWallError, NotPlatformAnswerError) as exc:
                error = f"lookup: {exc} [{exc.url}]"
                upstream_wide = True
            except (FetchError, ParseError) as exc:
                error = f"lookup: {exc} [{exc.url}]"
                upstream_wide = False
        if upstream_wide:
            log.warning("lookup.failed", users=len(users), error=error, left_to="collector")
            return {}
        log.warning("lookup.failed", users=len(users), error=error)
        return {user.user_id: Resolution(None, Status.FAILED, error) for user in users}
