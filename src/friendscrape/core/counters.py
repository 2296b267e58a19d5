"""Run counters shared by the fetchers, the writer and the progress reporter."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunCounters:
    """Live figures of one run; read by progress events and the watchdog."""

    started: float = field(default_factory=time.monotonic)
    users_done: int = 0
    users_saved: int = 0
    pages: int = 0
    requests: int = 0
    in_flight: int = 0
    friends: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    last_write: float = field(default_factory=time.monotonic)
    paused_until: dict[str, float] = field(default_factory=dict)
    # How late the event loop runs ready callbacks (seconds, smoothed): on a busy core
    # every response waits this long before it is read, which is not the upstream's delay.
    loop_lag: float = 0.0

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return max(time.monotonic() - self.started, 1e-9)
