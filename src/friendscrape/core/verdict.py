"""The leave rule's verdict with the figures it weighed (``ClaimPace.judge``), so every
claim ahead, claimed or left, and every claimed partition given back before it starts,
logs what it saw: which estimate was unknown, and how far apart the two ends were."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "unknown"


def _figure(value: float | None) -> float | str:
    return UNKNOWN if value is None else round(value, 2)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a worker leaves the free partitions to the others, and why. Paces are
    seconds a unit of work (an expected page where the plan weighs pages); None where
    not known yet."""

    leave: bool
    own_seconds: float | None  # its end of the first free partition (and what it drains)
    others_finish_seconds: float | None  # the others' end of theirs and every free one
    own_pace: float | None  # measured from the pages its runs fetched
    own_pace_theirs: float | None  # as the store shows its partitions under way
    others_pace: float | None  # the one weighed: the faster of the two below
    others_fleet_pace: float | None  # from how the fleet's pending work shrank
    others_held_pace: float | None  # from their partitions under way
    own_left: float  # work left of its partitions under way, counted first
    workers: int  # other workers holding a partition
    waiting: int  # others holding none, waiting for one
    free: int
    free_work: float  # of every free partition
    first_work: float  # of the one it would take

    def slower(self) -> bool:
        """Whether this worker may be slower than the others: their pace or its own not
        known, or its own (as measured, or as the store shows it) slower than theirs. A
        worker no slower never leaves a partition to them (they could not end it first)."""
        own = self.own_pace
        if own is None or self.others_pace is None:
            return True
        return max(own, self.own_pace_theirs or 0.0) > self.others_pace

    def fields(self) -> dict[str, object]:
        """The figures as log fields, rounded; ``unknown`` where not known."""
        return {
            "leave": self.leave,
            "own_seconds": _figure(self.own_seconds),
            "others_finish_seconds": _figure(self.others_finish_seconds),
            "own_pace": _figure(self.own_pace),
            "own_pace_theirs": _figure(self.own_pace_theirs),
            "others_pace": _figure(self.others_pace),
            "others_fleet_pace": _figure(self.others_fleet_pace),
            "others_held_pace": _figure(self.others_held_pace),
            "own_left": round(self.own_left, 1),
            "workers": self.workers,
            "waiting": self.waiting,
            "free": self.free,
            "free_work": round(self.free_work, 1),
            "work": round(self.first_work, 1),
        }
