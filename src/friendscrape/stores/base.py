"""The Store protocol: the one seam between the pipeline and where data lives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from friendscrape.models import FriendList, Partition, User, UserPage


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: rows read, new users added, users updated."""

    read: int
    added: int
    updated: int


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One result's figures, as read for progress reports (no friend lists)."""

    user_id: str
    partition: int
    status: str
    friend_count: int
    start_at: str
    end_at: str


@dataclass(frozen=True, slots=True)
class StatusSummary:
    """Figures of the results of one partition and one status, aggregated by the store.

    ``partition`` is the plan's (0 for results of users outside the plan); ``seconds``
    sums end_at - start_at; ``first_start``/``last_end`` are ISO 8601 UTC strings;
    ``recent`` counts results that ended at or after the ``since`` asked for.
    """

    partition: int
    status: str
    users: int
    friends: int
    seconds: float
    first_start: str
    last_end: str
    recent: int


class Store(Protocol):
    """Users, the partition plan and results.

    Implementations keep their SQL and client details inside; every method may raise
    StoreUnavailableError (cannot reach it) or StoreTransientError (worth a retry).
    Reads count each user once even if a result was written twice (keep the newest).
    """

    async def open(self) -> None:
        """Connect and create missing tables."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""

    async def import_users(self, users: Sequence[User]) -> ImportResult:
        """Insert or update users by user_id (re-importing is safe)."""

    async def user_count(self) -> int:
        """Users stored."""

    async def result_count(self) -> int:
        """Users with a result row."""

    async def plan_partitions(self, count: int) -> list[Partition]:
        """Replace the plan: NTILE(count) over users in id order (numeric ids numerically)."""

    async def partitions(self) -> list[Partition]:
        """The stored plan, by partition number (empty when none)."""

    async def pending_users(
        self, partition: int, *, retry_failed: bool, cursor: str | None, limit: int
    ) -> UserPage:
        """Users of ``partition`` with no result (or a failed one), in plan order after cursor."""

    async def pending_count(self, partition: int, *, retry_failed: bool) -> int:
        """How many users ``pending_users`` would return in all."""

    async def save(self, results: Sequence[FriendList]) -> None:
        """Save a chunk of results in one transaction; one row per user (upsert)."""

    def results(self) -> AsyncIterator[FriendList]:
        """Every result row, one per user, in user order."""

    async def status_rows(self) -> list[StatusRow]:
        """Per-user figures for progress reports, one per user."""

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        """Results aggregated per partition and status in the store (no per-user rows)."""
