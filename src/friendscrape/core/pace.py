"""Whether a worker of ``run --partition next`` should leave the last free partitions
to the rest of its fleet (``ClaimPace``, the one object the claims use): the leave rule
of ``core/claim.py``, kept apart from the claims' store calls so it reads, and is
tested, as the arithmetic it is. The worker's own pace is read in ``core/pace_own.py``,
the others' pace and finish in ``core/pace_others.py``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from friendscrape.core.pace_others import OthersPace, free_works
from friendscrape.core.verdict import Verdict

# A claim is a read and a take; a partition then counts and reads its pending users: a
# few statements more, about the claim's time again. Twice the claim's seconds is the
# lead a partition's feed gives its next claim (core/pipeline.py: Handover).
_LEAD_PER_CLAIM = 2.0
_FIRST_LEAD = 1.0  # seconds, before any claim was timed
LEAVE_MARGIN = 1.1
"""How much longer than the others' finish this worker's partition must take before it
leaves them the free ones: both are estimates from a few partitions, so a close case
(6.7 s against 6.3 s, say) claims. Taking one ends the job at the later of its own end
and the others' (one partition fewer for them), leaving it at the others' end: past
that end, each second of margin is a second of tail (a 1.5x margin let a worker three
times slower end its last partition some 9 s after the rest, 1.29x the ideal)."""


@dataclass(slots=True)
class ClaimPace(OthersPace):
    """How fast this worker and the rest of the fleet get through work, from what its
    claims read: the fleet's pace from how the pending partitions' work shrinks
    (``OthersPace``), its own from the seconds each of its partitions took over their
    work (``OwnPace``). A partition's work is its expected pages (``weights``, the
    plan's ``partition_pages``); with no weights, each partition weighs 1 and paces are
    seconds a partition. Even a plan balanced by pages has partitions of unequal work (a
    user heavier than a share makes one alone), so seconds a partition did not compare:
    a slow worker whose partitions had been small looked about as fast as the others,
    took a big last partition and ended the job late."""

    # Pending users of the partitions the latest claim's read counted (a run starting
    # one of them need not count them again: a statement less a partition on BigQuery).
    pending_users: dict[int, int] = field(default_factory=dict)
    leaving: bool = False  # leaving the free partitions to the others now
    claim_seconds: float | None = None  # the latest claims' seconds (read and take), smoothed
    # Other workers' runs, when each was last seen holding a live lease (monotonic), and
    # those whose lease was found gone: the workers waiting for a partition are seen
    # ones that hold none now.
    seen: dict[str, float] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    verdict: Verdict | None = None  # the latest claim's (or re-check's) verdict

    def took(self, seconds: float) -> None:
        """A claim (its read and its take) took ``seconds``."""
        last = self.claim_seconds
        self.claim_seconds = seconds if last is None else (last + seconds) / 2

    def lead_seconds(self) -> float:
        """The seconds before a partition's last users are fed that its next claim
        starts, so the next partition feeds as they are (``Handover``)."""
        if self.claim_seconds is None:
            return _FIRST_LEAD
        return _LEAD_PER_CLAIM * self.claim_seconds

    def judge(
        self,
        free: int | Sequence[float],
        others: int,
        *,
        draining: bool,
        ages: list[float] | None = None,
        waiting: int = 0,
        sizes: list[float] | None = None,
        unstarted: frozenset[int] = frozenset(),
    ) -> Verdict:
        """Whether this worker leaves the ``free`` partitions to ``others`` live
        workers, with the figures it weighed: it leaves when they would end them all
        (``others_finish``) before this worker ended the first of them (its pace times
        that partition's work, over ``LEAVE_MARGIN`` times their finish). ``draining``:
        its latest partition is still under way; a partition claimed now would begin
        once it ends, so its own seconds count what is left of it first. Where its runs'
        pages are read (``measured``), its pace is their seconds a page (or, slower, as
        the store shows its partitions: ``_in_their_frame``) and what is left is the
        partition's expected pages less those fetched. Otherwise its latest partition
        has taken at least the seconds since it began (its pace is then at least those
        seconds over that partition's work), what is left of it at its pace from now.
        (Not the claim's lead: with claims of seconds, a lead longer than a partition
        had every worker leave its claims ahead.) ``unstarted``: see ``measured``."""
        works = free_works(free)
        finish = self.others_finish(works, others, ages, waiting, sizes) if works else None
        measured = self.measured(unstarted)
        frame = self._in_their_frame(others + waiting)
        figures = Verdict(
            leave=False,
            own_seconds=None,
            others_finish_seconds=finish,
            own_pace=measured[0] if measured is not None else None,
            own_pace_theirs=frame or None,
            others_pace=self.others_seconds(others + waiting),
            others_fleet_pace=self.fleet_seconds(others + waiting),
            others_held_pace=self.held_seconds,
            own_left=measured[1] if measured is not None and draining else 0.0,
            workers=others,
            waiting=waiting,
            free=len(works),
            free_work=sum(works),
            first_work=works[0] if works else 0.0,
        )
        if not works:
            return figures
        if measured is not None:
            # Its pace from the pages it fetched, the first partition's too: what is left
            # of its partitions under way comes first, then the one it would take.
            own = max(measured[0], frame) * (figures.own_left + works[0])
        else:
            pace = self.own_pace()
            own = pace * works[0]
            if draining and self.since is not None:
                elapsed = time.monotonic() - self.since
                current = max(self.current, 1e-9)
                own = max(own, elapsed * works[0] / current) + max(pace * current - elapsed, 0.0)
        leave = finish is not None and own > LEAVE_MARGIN * finish
        return replace(figures, leave=leave, own_seconds=own)
