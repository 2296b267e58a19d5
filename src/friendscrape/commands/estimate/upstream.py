"""Where `estimate --from-status`'s measured rates come from: the store's run samples.

Each run records the host of its base URL and whether it is a loopback address (a local
simulator). Rates measured against a simulator say nothing of a real upstream's pace:
the estimate refuses them unless asked (``--allow-simulated``), and then labels every
figure as a simulator figure. A store older than run samples cannot say: the estimate
goes on, noting that the upstream is unknown.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.errors import UsageError
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import RunSample


@dataclass(frozen=True, slots=True)
class MeasuredUpstream:
    """The upstreams the measured partitions last ran against (``known`` false: no samples)."""

    known: bool
    hosts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    simulated_partitions: tuple[int, ...] = ()


async def read_samples(settings: Settings) -> dict[int, RunSample]:
    """Each partition's newest run sample (empty for a store older than run samples)."""
    async with opened_store(store_config(settings), read_only=True) as store:
        return await retried(store_retry_policy(settings), "samples", store.latest_samples)


def measured_upstream(
    samples: Mapping[int, RunSample], measured: Collection[int]
) -> MeasuredUpstream:
    """The upstreams of the partitions whose rates were measured (all sampled ones when
    none of those has a sample)."""
    chosen = {p: s for p, s in samples.items() if p in measured} or dict(samples)
    if not chosen:
        return MeasuredUpstream(known=False)
    return MeasuredUpstream(
        known=True,
        hosts=tuple(sorted({s.upstream_host or "several hosts" for s in chosen.values()})),
        sources=tuple(sorted({s.source for s in chosen.values() if s.source})),
        simulated_partitions=tuple(sorted(p for p, s in chosen.items() if s.simulated)),
    )


def _partitions(numbers: tuple[int, ...]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"partition{'s' if len(numbers) > 1 else ''} {shown}{more}"


def upstream_notes(upstream: MeasuredUpstream, *, allow_simulated: bool) -> tuple[str, ...]:
    """The lines that say where the rate came from; UsageError for simulator rates unless
    ``allow_simulated``."""
    if not upstream.known:
        note = (
            "note: the store has no run samples (it predates them), so the upstream these "
            "rates were measured on is unknown: make sure they are not simulator figures"
        )
        return (note,)
    hosts = ", ".join(upstream.hosts)
    if upstream.simulated_partitions:
        where = f"{_partitions(upstream.simulated_partitions)} ran against {hosts}"
        if not allow_simulated:
            msg = (
                f"the measured rates come from a local simulator ({where}), not a real "
                "upstream: measure on the real one, or pass --allow-simulated"
            )
            raise UsageError(msg)
        warning = (
            "warning: simulator figures, not a real rate: the measured rates come from a "
            f"local simulator ({where})"
        )
        return (warning,)
    return (f"rates measured against {hosts}",)
