"""A local stand-in for the upstream site: a synthetic graph served as its pages.

Used by the demo, the tests and the benchmarks; friendscrape's core never imports it.

    async with run_simulator(SimConfig(users=100, latency=0)) as sim:
        sim.base_url, sim.graph.friends("name"), sim.stats.total
"""

from friendscrape.simulator.app import (
    CONTROL_PREFIX,
    Fault,
    RunningSimulator,
    SimConfig,
    SimStats,
    build_app,
    run_simulator,
)
from friendscrape.simulator.formats import FORMATS, write_users_csv
from friendscrape.simulator.graph import (
    HOSTILE_ACCOUNTS,
    AccountKind,
    SimAccount,
    SyntheticGraph,
)
from friendscrape.simulator.twitter_mobile import MobileSite

__all__ = [
    "CONTROL_PREFIX",
    "FORMATS",
    "HOSTILE_ACCOUNTS",
    "AccountKind",
    "Fault",
    "MobileSite",
    "RunningSimulator",
    "SimAccount",
    "SimConfig",
    "SimStats",
    "SyntheticGraph",
    "build_app",
    "run_simulator",
    "write_users_csv",
]
