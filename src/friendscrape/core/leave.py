"""The leave rule read from what a claim read (``run --partition next``): which other
workers hold a partition and since when, which wait for one, how fast their partitions
under way and this worker's own go as the store shows them, and the verdict of
``ClaimPace.judge`` on the free partitions, logged with its figures. Kept apart from the
claims' store calls (``core/claim.py``) and from the pace arithmetic (``core/pace.py``,
``core/pace_own.py``, ``core/pace_others.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog

from friendscrape.core.pace import ClaimPace
from friendscrape.core.pace_own import MIN_MEASURED
from friendscrape.core.verdict import Verdict
from friendscrape.stores.base import LeaseHolder, now_utc

log = structlog.get_logger(__name__)

_WAITING_FOR = 60.0  # seconds since last seen holding a partition a worker counts as waiting


def holders(
    leases: dict[int, LeaseHolder], run_id: str, pace: ClaimPace
) -> tuple[dict[str, tuple[float | None, int]], int]:
    """Each other worker holding a live lease, with the seconds it has been at its
    latest partition (None where its lease does not say when it was taken) and that
    partition; and how many others wait for a partition: seen holding one within
    ``_WAITING_FOR`` seconds, holding none now, their lease not found gone (a worker
    killed or stopped is no longer waiting)."""
    now, clock = now_utc(), time.monotonic()
    latest: dict[str, tuple[float | None, int]] = {}
    for part, holder in leases.items():
        if holder.run_id == run_id:
            continue
        if holder.gone(now):
            pace.seen.pop(holder.run_id, None)
            pace.gone.add(holder.run_id)
            continue
        age = (now - holder.acquired_at).total_seconds() if holder.acquired_at else None
        before = latest.get(holder.run_id)
        if before is None or (age is not None and (before[0] is None or age < before[0])):
            latest[holder.run_id] = (age, part)
    for run in latest:
        if run not in pace.gone:
            pace.seen[run] = clock
    waiting = sum(
        1 for run, at in pace.seen.items() if run not in latest and clock - at <= _WAITING_FOR
    )
    return latest, waiting


def _held_seconds(pace: ClaimPace, held: Iterable[tuple[float | None, int]]) -> float | None:
    """Holders' seconds a unit of work so far: the seconds they have held their
    partitions (``held``: each one's seconds and number) over the work done of them,
    where the claim's read gave what is left of them (None: too little done to tell)."""
    spent, done = 0.0, 0.0
    for age, part in held:
        if age is not None and part in pace.left:
            spent += age
            done += max(pace.work(part) - pace.left[part], 0.0)
    return spent / done if done >= MIN_MEASURED * pace.typical() else None


def judge_free(
    pace: ClaimPace,
    free: list[int],
    leases: dict[int, LeaseHolder],
    run_id: str,
    *,
    draining: bool,
    unstarted: frozenset[int] = frozenset(),
) -> Verdict:
    """The leave rule's verdict on the ``free`` partitions (the first the one it would
    take), from the claim's read; ``draining``: its latest partition is still under way;
    ``unstarted``: its own partitions claimed but not started (no work of them done,
    their seconds held not counted in its pace)."""
    latest, waiting = holders(leases, run_id, pace)
    pace.held_seconds = _held_seconds(pace, latest.values())
    now = now_utc()
    pace.own_held_seconds = _held_seconds(
        pace,
        (
            ((now - holder.acquired_at).total_seconds(), part)
            for part, holder in leases.items()
            if holder.run_id == run_id and holder.acquired_at is not None and part not in unstarted
        ),
    )
    # What is left of each holder's partition: the pages its claim read left of it where
    # read (from now: no age), else its plan's less the seconds it has been at it.
    known = [
        (0.0, pace.left[part]) if part in pace.left else (age, pace.work(part))
        for age, part in latest.values()
        if age is not None
    ]
    ages = [age for age, _work in known] if len(known) == len(latest) else []
    pace.verdict = pace.judge(
        [pace.work_left(part) for part in free],
        len(latest),
        draining=draining,
        ages=ages,
        waiting=waiting,
        sizes=[work for _age, work in known] if ages else None,
        unstarted=unstarted,
    )
    return pace.verdict


def leaves(
    pace: ClaimPace | None,
    free: list[int],
    leases: dict[int, LeaseHolder],
    run_id: str,
    *,
    draining: bool,
) -> bool:
    """True when this worker leaves the ``free`` partitions to the others (logged once
    each time it starts to); ``draining``: its latest partition is still under way."""
    if pace is None:
        return False
    verdict = judge_free(pace, free, leases, run_id, draining=draining)
    if draining:
        # Every claim-ahead verdict, claimed or left, with its figures.
        log.info("claim.ahead_verdict", **verdict.fields())
    if verdict.leave and not pace.leaving:
        log.info("claim.left_to_others", **verdict.fields())
    pace.leaving = verdict.leave
    return pace.leaving
