"""Run counters: figures of one run for progress events and the summary, owned by the run."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from friendscrape.fetch.http import FetchCounts


@dataclass
class RunCounters:
    """Live figures of one run; read by progress events and the watchdog, steering nothing.

    ``fetch`` is the HTTP client's own tally (requests, retries by kind), handed to the
    client the run opens.
    """

    started: float = field(default_factory=time.monotonic)
    users_done: int = 0
    users_saved: int = 0
    pages: int = 0
    in_flight: int = 0
    friends: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    fetch: FetchCounts = field(default_factory=FetchCounts)
    last_write: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return max(time.monotonic() - self.started, 1e-9)
