"""The Store protocols: the seams between their clients and where data lives.

Each client names the narrowest it uses; both stores implement all of them::

    Store           what ``open_store`` returns: open/close and every part below
    ├── RunStore    a run: feed it pending users, save its results, hold its lease
    ├── PlanStore   the import and plan commands: users, the plan, placing new users
    ├── ReadStore   status, report, export, estimate: results and their figures
    └── WaveStore   waves and export: the job's waves and each wave's lists
        (PlanStore and ReadStore share PlanReads: counts and the stored plan)

Timestamps cross these seams as aware UTC ``datetime``s; each store converts at its
own edge (SQL text, TIMESTAMP).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from friendscrape.errors import PartitionHeldError
from friendscrape.models import FriendList, Partition, PlanCut, User, UserPage

T = TypeVar("T")

IMPORT_BATCH = 5_000
"""Users per ``import_users`` call from the import command: a retried call repeats one
batch, so its added/updated counts stay exact (BigQuery MERGEs this many per statement)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did: rows read, new users added, users updated."""

    read: int
    added: int
    updated: int
    duplicates: int = 0
    """Rows naming a user an earlier row of the same import named (the last one wins)."""


Again = Callable[[str, Callable[[], Awaitable[T]]], Awaitable[T]]
"""How a caller repeats one remote step of a store call that fails transiently: ``again(
what, step)`` (``friendscrape.stores.retried`` bound to the store policy). Stores never retry;
a long call made of steps (a streamed import) takes the caller's policy this way."""


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One result's figures, as read for progress reports (no friend lists); times are
    UTC, None where a row lacks them (rows of the original BigQuery deployment may)."""

    user_id: str
    partition: int
    status: str
    friend_count: int
    start_at: datetime | None
    end_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatusSummary:
    """Figures of the results of one partition and one status, aggregated by the store.

    ``partition`` is the plan's (0 for results of users outside the plan); ``seconds``
    sums end_at - start_at; ``first_start``/``last_end`` are UTC datetimes (None when the
    store has none); ``recent`` counts results that ended at or after the ``since`` asked.
    """

    partition: int
    status: str
    users: int
    friends: int
    seconds: float
    first_start: datetime | None
    last_end: datetime | None
    recent: int


@dataclass(frozen=True, slots=True)
class ListCounts:
    """How complete the ok users' lists are, counted in the store (no per-user rows).

    ``truncated``: the walk stopped at ``max_friends``; ``incomplete``: truncated and
    more than 1% short of the profile's following count, or with no count to compare
    (``NodeRow.complete`` is false); ``short``: walked to the end of the list, yet more
    than 1% short of the profile's count (the upstream listed fewer than it counts).
    """

    ok: int
    truncated: int
    incomplete: int
    short: int


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a partition: this run, on this host, for ``ttl`` seconds per heartbeat."""

    partition: int
    run_id: str
    ttl: float
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def expires(self, now: datetime) -> datetime:
        """When a lease renewed at ``now`` lapses unless renewed again."""
        return now + timedelta(seconds=self.ttl)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """A lease as stored: the holder and when its last heartbeat lapses."""

    host: str
    pid: int
    run_id: str
    expires_at: datetime
    acquired_at: datetime | None = None
    """When the holder took it (None where only the holder was read)."""

    def gone(self, now: datetime) -> bool:
        """True when the lease may be taken: it lapsed, or its holder is a process of
        this host that no longer exists (a kill -9 need not wait for the ttl there)."""
        if now >= self.expires_at:
            return True
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, run by another account
        return False

    def held_error(self, partition: int, now: datetime) -> PartitionHeldError:
        """The one line a second run of the partition prints."""
        left = max((self.expires_at - now).total_seconds(), 0.0)
        msg = (
            f"partition {partition} is held by run {self.run_id} (pid {self.pid} on "
            f"{self.host}); its lease expires in {left:.0f}s unless that run renews it"
        )
        return PartitionHeldError(msg)


@dataclass(frozen=True, slots=True)
class RunSample:
    """What one run met over one interval (table ``run_samples``): written at the run's
    start, at each lease heartbeat and at its end (``final``).

    The counts are deltas since the run's previous sample that was written, so sums over
    any time span are plain sums. ``upstream_host`` is ``host[:port]`` of the base URL
    only ("" when the users name several hosts, as Mastodon instances do); ``simulated``
    is true when that host is a loopback address (a local simulator, not a real
    upstream). ``learned_rate`` is the lowest request rate (requests/s) learned from
    429s over hosts and tokens, None when learning is off or nothing was learned yet.
    """

    run_id: str
    partition: int
    at: datetime
    source: str
    upstream_host: str
    simulated: bool
    users_done: int = 0
    pages: int = 0
    rate_limited: int = 0
    paused_seconds: float = 0.0
    learned_rate: float | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class RunSpan:
    """One run of one partition as its samples saw it: its first and last sample's
    times, and whether the last was its final one (the run ended)."""

    partition: int
    run_id: str
    first_at: datetime
    last_at: datetime
    final: bool


@dataclass(frozen=True, slots=True)
class SampleBucket:
    """Run samples of one partition summed over one time bucket, in the store.

    ``start`` is the bucket's first instant (UTC, a multiple of the bucket's seconds since
    the epoch); ``learned_rate`` is the lowest of the bucket's samples (None: none had one).
    """

    start: datetime
    partition: int
    users_done: int
    pages: int
    rate_limited: int
    paused_seconds: float
    learned_rate: float | None
    samples: int


def now_utc() -> datetime:
    """The clock leases are read against (hosts' clocks must agree within seconds)."""
    return datetime.now(UTC)


class PlanReads(Protocol):
    """Counts and the stored plan, read by the plan commands and by status alike."""

    async def user_count(self) -> int:
        """Users stored."""

    async def result_count(self) -> int:
        """Users with a result row."""

    async def partitions(self) -> list[Partition]:
        """The stored plan, by partition number (empty when none)."""

    async def partition_pages(
        self, page_size: int | None, *, max_friends: int | None = None
    ) -> dict[int, int]:
        """Each planned partition's expected work, as ``plan_partitions`` weighs it: the
        pages its users' lists need (``page_size``: each user ceil(min(following_count,
        max_friends) / page_size) + 1, the median weight where no count is known);
        ``page_size`` None: its users. ``run --partition next`` reads it once a worker, to weigh the
        partitions it would take by their size."""

    async def unplaced_count(self) -> int:
        """Users outside the stored plan (imported after it); 0 when there is no plan."""

    async def leases(self) -> dict[int, LeaseHolder]:
        """Each partition's stored lease, live or lapsed (the plan refuses to move users
        under a live one, status tells running partitions by it); empty when none."""

    async def job_platform(self) -> str | None:
        """The platform recorded for the job (``record_platform``); None when none is,
        as in a store written before jobs recorded one."""

    async def plan_cut(self) -> PlanCut | None:
        """How the stored plan was cut, as ``plan_partitions`` recorded it in the job's
        facts; None when nothing is recorded (no plan yet, or a store of an older
        version)."""


class PlanStore(PlanReads, Protocol):
    """What the import and plan commands change: users and the partition plan."""

    async def import_users(self, users: Sequence[User]) -> ImportResult:
        """Insert or update users by user_id (re-importing is safe)."""

    async def import_stream(
        self, batches: Iterable[Sequence[User]], *, again: Again[Any]
    ) -> ImportResult:
        """``import_users`` over every user of ``batches``, read once and never held in
        memory together: staged in the store (BigQuery: one load job) and merged at once."""

    async def record_platform(self, platform: str) -> str:
        """Record ``platform`` as the job's unless one is recorded already (the table
        holding it is created here, by the first write that needs it); returns the job's
        platform as recorded after the call, the earlier one when there was one."""

    async def plan_partitions(
        self, count: int, *, page_size: int | None = None, max_friends: int | None = None
    ) -> list[Partition]:
        """Replace the plan: NTILE(count) over users in id order (numeric ids numerically);
        with ``page_size``, cut in that order by expected work instead: each user weighs
        ceil(min(following_count, max_friends) / page_size) + 1 pages, as a list stops at
        ``max_friends`` names (None: no cap; the median weight where no count is known,
        1 when none is), ``count`` shares of the total (fewer partitions when a user
        outweighs a share)."""

    async def following_counts_known(self) -> int:
        """Users whose following count is known (what ``page_size`` plans weigh by)."""

    async def place_unplaced(self) -> dict[int, int]:
        """Put users outside the plan into the partition whose id range covers them (ids
        before the first partition go to the first, past the last to the last), after
        that partition's users; no placed user moves. Returns users placed per partition."""


@dataclass(frozen=True, slots=True)
class EdgeList:
    """One collected user's out-edges, as the store resolved them, in list order.

    ``targets[i]`` is the key of ``names[i]``: the id of the job's user it names (matched
    by the upstream's id, or by name ignoring case), else the upstream's id, else "";
    ``known[i]`` says whether it is a user of the job (what ``--within`` keeps; a store
    may work it out only when read).
    """

    source_id: str
    source_name: str
    platform: str
    names: list[str]
    targets: list[str]
    known: Sequence[bool]


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One user of the job (collected or not) or of the results: a node of the graph."""

    user_id: str
    name: str
    status: str
    following_count: int | None
    friend_count: int | None
    truncated: bool
    partition: int
    collected_at: datetime | None

    @property
    def complete(self) -> bool:
        """Collected in full: the walk reached the end of the list, or (capped) the count
        collected is within 1% of the profile's following count."""
        if self.status != "ok" or self.friend_count is None:
            return False
        if not self.truncated:
            return True
        if self.following_count is None:
            return False
        return abs(self.following_count - self.friend_count) <= 0.01 * self.following_count


class ReadStore(PlanReads, Protocol):
    """What status, report, export and estimate read: results and their figures."""

    def results(self) -> AsyncIterator[FriendList]:
        """Every result row, one per user, in user order."""

    def edge_lists(self, *, partition: int | None = None) -> AsyncIterator[EdgeList]:
        """Every collected user's out-edges (one partition's when given), in user order,
        targets resolved to the job's ids in the store (never in the caller's memory)."""

    def nodes(self, *, partition: int | None = None) -> AsyncIterator[NodeRow]:
        """Every user of the job and of the results, once, in user order."""

    async def status_rows(self) -> list[StatusRow]:
        """Per-user figures for progress reports, one per user."""

    async def finished_counts(self, *, bucket: int) -> list[tuple[int, int, int]]:
        """Results counted in the store per (plan partition, end_at // ``bucket`` seconds
        since the epoch): ``(partition, bucket number, users)``; never one row per user."""

    async def friend_histogram(self, *, bins: int) -> tuple[int, list[tuple[int, int]]]:
        """Users whose status is ok per friend-count bin: ``(bin width, [(bin, users)])``,
        bins of equal width from 0 to the largest count, counted in the store."""

    async def list_counts(self) -> ListCounts:
        """Ok users' lists counted as truncated, incomplete or short, in the store."""

    async def failure_kinds(self, *, limit: int) -> list[tuple[str, int]]:
        """Users whose status is failed, counted per kind of error in the store: the
        error's first word (``timeout``, ``http_404``, ``parse``...), most users first,
        at most ``limit`` kinds."""

    async def partition_summary(self, *, since: datetime) -> list[StatusSummary]:
        """Results aggregated per partition and status in the store (no per-user rows)."""

    async def latest_samples(self) -> dict[int, RunSample]:
        """Each partition's newest run sample (empty when no run wrote one)."""

    async def sample_buckets(
        self, bucket_seconds: int, *, since: datetime | None = None
    ) -> list[SampleBucket]:
        """Run samples summed per (bucket of ``bucket_seconds``, partition) in the store,
        by bucket then partition; only samples at or after ``since`` when given."""

    async def run_spans(self) -> list[RunSpan]:
        """Each run's first and last sample per partition (none from a store without
        samples): when each run was at work, so rates count no time nobody ran."""

    async def source_counts(self) -> list[tuple[str, int]]:
        """Results per ``source`` column value (the platform), most first."""


@dataclass(frozen=True, slots=True)
class WaveSummary:
    """One wave's figures: when it was opened, its first and last result, the users
    with a result in it (``done``; ``ok`` of them collected), and ``changed``: users whose
    list differs from their previous result's."""

    wave: int
    opened_at: datetime | None
    first_start: datetime | None
    last_end: datetime | None
    done: int
    ok: int
    changed: int

    def as_json(self) -> dict[str, object]:
        """The summary as JSON values (times in UTC ISO 8601, null when none)."""
        return {
            "wave": self.wave,
            "opened_at": _iso(self.opened_at),
            "first_result": _iso(self.first_start),
            "last_result": _iso(self.last_end),
            "users_done": self.done,
            "users_ok": self.ok,
            "lists_changed": self.changed,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True, slots=True)
class WaveRow:
    """One user's result in one wave, its list resolved (an unchanged row read with the
    list it kept); the list is decoded only when asked (``result``)."""

    user_id: str
    status: str
    list_hash: int | None
    end_at: datetime | None
    row: Any
    read: Callable[[Any], FriendList]

    def result(self) -> FriendList:
        """The result as a record, its list decoded."""
        return self.read(self.row)


class WaveStore(Protocol):
    """What the waves and export commands read and open: the job's waves, their lists."""

    async def current_wave(self) -> int:
        """The wave runs collect now (1 when none was opened)."""

    async def open_wave(self, now: datetime) -> int:
        """Open the next wave at ``now`` and return its number; nothing per user is
        written (every user is pending in it until it has a result of it)."""

    async def wave_summaries(self, *, times: bool = True) -> list[WaveSummary]:
        """Each wave's figures, by wave number (wave 1 first, every opened wave listed).
        ``times=False``: a store may leave each wave's first start and last end out (None)
        where reading them costs more than the counts (status needs the counts only)."""

    def wave_rows(self, wave: int) -> AsyncIterator[WaveRow]:
        """Each user's result in ``wave``, in user order, lists resolved (users with no
        result in that wave are left out)."""


@dataclass(frozen=True, slots=True)
class ClaimRead:
    """What a claim reads (``RunStore.claim_read``): the pending partitions, ascending;
    every lease row; the expected pages left of the partitions it could weigh, and their
    pending users (what ``pending_count`` would return)."""

    pending: list[int]
    leases: dict[int, LeaseHolder]
    left: dict[int, int]
    users: dict[int, int] = field(default_factory=dict)


class RunStore(Protocol):
    """What a partition run uses: its pending users, saving results, its lease."""

    async def pending_users(
        self, partition: int, *, retry_failed: bool, cursor: str | None, limit: int
    ) -> UserPage:
        """Users of ``partition`` with no result (or a failed one), in plan order after cursor."""

    async def pending_count(self, partition: int, *, retry_failed: bool) -> int:
        """How many users ``pending_users`` would return in all."""

    async def pending_partitions(self, *, retry_failed: bool) -> list[int]:
        """The plan's partitions that still have users ``pending_users`` would return,
        ascending (one query however many partitions)."""

    async def claim_view(self, *, retry_failed: bool) -> tuple[list[int], dict[int, LeaseHolder]]:
        """``pending_partitions`` and ``leases`` (all of them, live or lapsed) read
        together: ``run --partition next`` reads them before each claim, and on BigQuery
        each statement can take seconds on a busy fleet, so this is one query there."""

    async def claim_read(
        self, *, retry_failed: bool, page_size: int | None, max_friends: int | None = None
    ) -> ClaimRead:
        """``claim_view`` and the expected pages left of partly collected partitions
        (their pending users weighed as ``partition_pages`` weighs them, with the same
        ``page_size`` and ``max_friends``; ``page_size`` None: their pending users)
        with their pending users, in the same read: on BigQuery every pending
        partition's (the same query), on SQLite those with a lease row, live or not (a
        holder's, or a dead one's: the partitions a claim may find partly collected)."""

    async def save_resolved(self, ids: Mapping[str, str]) -> None:
        """Keep the account ids looked up for handles (user_id -> id), returned by
        ``pending_users`` as ``User.resolved_id`` from then on (re-saving is harmless)."""

    async def save(self, results: Sequence[FriendList]) -> None:
        """Save a chunk of results in one transaction; one row per user (upsert)."""

    async def acquire_lease(self, lease: Lease) -> None:
        """Take the partition's lease, or raise PartitionHeldError naming its live holder."""

    async def claim_lease(
        self, run_id: str, ttl: float, candidates: Sequence[int], gone: Mapping[int, str]
    ) -> Lease | None:
        """Take the lease of the first of ``candidates`` (in the order given) that no
        other live run holds, atomically, in one statement where the store allows it
        (``run --partition next``: a read of the free partitions, then a take of one of
        them, loses the race whenever another worker took it in between); None when
        every one is held. ``gone``: partitions whose holder the caller found gone
        before its lease lapsed (a dead process of this host), with that holder's run."""

    async def renew_lease(self, lease: Lease) -> bool:
        """Push the lease's expiry forward; False when another run now holds it."""

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up (only if this run still holds it)."""

    async def record_sample(self, sample: RunSample) -> None:
        """Append one run sample (readable by ``latest_samples`` at once)."""


class Store(RunStore, PlanStore, ReadStore, WaveStore, Protocol):
    """Users, the partition plan and results: every part above, and the connection.

    Implementations keep their SQL and client details inside; every method may raise
    StoreUnavailableError (cannot reach it) or StoreTransientError (worth a retry, which
    is the caller's to make: stores never retry). Reads count each user once even if a
    result was written twice (keep the newest).
    """

    async def open(self) -> None:
        """Connect and create missing tables (a read-only store creates nothing)."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""
