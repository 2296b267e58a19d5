"""The job's platform: which upstream a store's users are on, and the rules every command
holds a source to.

``users import --source NAME`` records it in the store; ``run`` collects from it without
being told, and refuses a ``--source`` (or FRIENDSCRAPE_SOURCE) that names another, as
``users import`` refuses one: a store holds one platform's users and results. A store
written before jobs recorded a platform reads it from its results (their one source);
one with none is given it once, by the first ``run --source`` or ``users import
--source``. Nothing defaults to a platform: a job with none and no source is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from friendscrape.errors import UsageError
from friendscrape.platforms import NO_PLATFORM


class _JobReads(Protocol):
    async def job_platform(self) -> str | None: ...

    async def source_counts(self) -> list[tuple[str, int]]: ...


class _JobStore(_JobReads, Protocol):
    async def record_platform(self, platform: str) -> str: ...


@dataclass(frozen=True, slots=True)
class JobPlatform:
    """What a store says of its job's platform: the one recorded (``recorded``), else the
    sources its results came from (``seen``, none empty)."""

    recorded: str | None
    seen: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        """The job's platform: recorded, else its results' one source; None if neither."""
        if self.recorded is not None:
            return self.recorded
        return self.seen[0] if len(self.seen) == 1 else None

    def conflict(self, asked: str) -> str | None:
        """Why ``asked`` is not this job's platform (the text of a refusal), or None."""
        if self.recorded is not None:
            if asked == self.recorded:
                return None
            return f"this job's platform is {self.recorded} (recorded in its store), not {asked}"
        # Results of several sources (a store mixed before platforms were recorded): any
        # one of them may be given, and is recorded from then on.
        if not self.seen or asked in self.seen:
            return None
        return f"this job's results come from {', '.join(self.seen)}, not {asked}"


def no_platform() -> UsageError:
    """The refusal of a job with no platform to a command given no source."""
    return UsageError(NO_PLATFORM)


async def read_platform(store: _JobReads) -> JobPlatform:
    """The job's platform as ``store`` says it; its results are counted only when none
    is recorded (a store of an older version)."""
    recorded = await store.job_platform()
    if recorded is not None:
        return JobPlatform(recorded)
    counts = await store.source_counts()
    return JobPlatform(None, tuple(s for s, n in counts if s and n))


async def of_the_job(store: _JobReads) -> str:
    """`` of the bluesky job``: what a summary line adds to name the job's platform (""
    when it has none)."""
    name = (await read_platform(store)).name
    return f" of the {name} job" if name is not None else ""


async def settle_for_run(store: _JobStore, asked: str | None) -> str:
    """The platform a run collects from: the job's, which ``asked`` (``--source`` or
    FRIENDSCRAPE_SOURCE, None when neither) must agree with; recorded when the job had
    none recorded. UsageError (one line) when they disagree or neither names one."""
    job = await read_platform(store)
    if asked is None:
        if job.name is None:
            raise no_platform()
        asked = job.name
    why = job.conflict(asked)
    if why is not None:
        msg = (
            f"{why} from --source or FRIENDSCRAPE_SOURCE: leave it out, or use another "
            f"--store for a job on {asked}"
        )
        raise UsageError(msg)
    return await _record(store, job, asked)


async def settle_for_import(store: _JobStore, asked: str) -> str:
    """Record ``asked`` as the job's platform for ``users import --source``; the same
    again is fine, another is refused (UsageError, one line) before any user is read."""
    job = await read_platform(store)
    why = job.conflict(asked)
    if why is not None:
        msg = f"{why}: import users of {asked} into another --store"
        raise UsageError(msg)
    return await _record(store, job, asked)


async def _record(store: _JobStore, job: JobPlatform, platform: str) -> str:
    if job.recorded == platform:
        return platform
    recorded = await store.record_platform(platform)
    if recorded != platform:  # another command recorded its own a moment before
        msg = f"this job's platform is {recorded} (recorded in its store), not {platform}"
        raise UsageError(msg)
    return platform
