"""Where a worker runs: its partition number from the platform, and idling once done.

``friendscrape run --partition auto`` takes the partition from the first of these that is
set (an empty value counts as unset):

1. ``FRIENDSCRAPE_PARTITION``: set by hand; 1-based, wins over everything else.
2. ``DYNO`` (Heroku): ``worker.3`` is partition 3. Other process types (``web.1``, the
   one-off ``run.1234``) and Fir-generation names (``worker-5d8f7c9b4-x2kq9``, which
   carry no number) are refused.
3. ``JOB_COMPLETION_INDEX`` (Kubernetes Indexed Job): 0-based, so index 0 is partition 1.
4. ``CLOUD_RUN_TASK_INDEX`` (Cloud Run Jobs): 0-based, so index 0 is partition 1.

Partitions are 1-based like SQL ``NTILE``. Whether the number exists in the stored plan
is the plan's question (``PlanError``), not this module's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from friendscrape.errors import UsageError

AUTO = "auto"

NEXT = "next"
"""``--partition next``: claim partitions on demand (``friendscrape.core.claim``)."""

_DYNO = re.compile(r"(?P<kind>[A-Za-z0-9_]+)\.(?P<number>\d+)")
_WORKER_PROCESS = "worker"


@dataclass(frozen=True, slots=True)
class PartitionChoice:
    """The partition a worker runs and where it came from (an env name or ``--partition``)."""

    number: int
    source: str


def _is_digits(text: str) -> bool:
    # Not int(): it also accepts "+3", "3_0" and non-ASCII digits such as "٣".
    return text.isascii() and text.isdecimal()


def _positive(value: str, where: str) -> int:
    text = value.strip()
    if not _is_digits(text):
        msg = f"{where}={value!r} is not a partition number (a whole number from 1)"
        raise UsageError(msg)
    number = int(text)
    if number < 1:
        msg = f"{where}={value!r}: partitions are numbered from 1"
        raise UsageError(msg)
    return number


def _from_flag(value: str) -> int:
    return _positive(value, "--partition")


def _from_partition_env(value: str) -> int:
    return _positive(value, "FRIENDSCRAPE_PARTITION")


def _from_dyno(value: str) -> int:
    match = _DYNO.fullmatch(value)
    if match is None:
        msg = (
            f"DYNO={value!r} carries no dyno number (Heroku Fir apps do not number dynos):"
            " set FRIENDSCRAPE_PARTITION or pass --partition N"
        )
        raise UsageError(msg)
    if match["kind"] != _WORKER_PROCESS:
        msg = (
            f"DYNO={value!r} is not a worker dyno: --partition auto needs worker.N"
            " (Procfile 'worker: friendscrape run --partition auto'); pass --partition N"
        )
        raise UsageError(msg)
    if int(match["number"]) < 1:
        msg = f"DYNO={value!r}: partitions are numbered from 1"
        raise UsageError(msg)
    return int(match["number"])


def _from_zero_based(name: str) -> Callable[[str], int]:
    def convert(value: str) -> int:
        if not _is_digits(value):
            msg = f"{name}={value!r} is not a whole number >= 0"
            raise UsageError(msg)
        return int(value) + 1

    return convert


# Order is precedence: an explicit setting beats whatever the platform injects.
_SOURCES: tuple[tuple[str, Callable[[str], int]], ...] = (
    ("FRIENDSCRAPE_PARTITION", _from_partition_env),
    ("DYNO", _from_dyno),
    ("JOB_COMPLETION_INDEX", _from_zero_based("JOB_COMPLETION_INDEX")),
    ("CLOUD_RUN_TASK_INDEX", _from_zero_based("CLOUD_RUN_TASK_INDEX")),
)

PARTITION_ENV_NAMES: tuple[str, ...] = tuple(name for name, _ in _SOURCES)
"""The environment names ``--partition auto`` reads, in order of precedence."""


def choose_partition(value: str, environ: Mapping[str, str]) -> PartitionChoice:
    """Resolve ``--partition VALUE`` (a number, or ``auto``) and say where it came from."""
    if value.strip().lower() != AUTO:
        return PartitionChoice(_from_flag(value), "--partition")
    for name, convert in _SOURCES:
        raw = environ.get(name, "").strip()
        if raw:
            return PartitionChoice(convert(raw), name)
    names = ", ".join(PARTITION_ENV_NAMES)
    msg = f"--partition auto found no partition in the environment (looked for {names})"
    raise UsageError(msg)


def resolve_partition(value: str, environ: Mapping[str, str]) -> int:
    """The 1-based partition for ``--partition VALUE``; UsageError with one line if none."""
    return choose_partition(value, environ).number


async def idle_forever(stop: asyncio.Event) -> None:
    """Wait, doing nothing, until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT).

    For ``--when-done idle``: Heroku restarts a worker dyno that exits, even with status
    0, so a finished worker stays up without busy work until it is scaled down.
    """
    log = structlog.get_logger("friendscrape.worker")
    log.info("worker.idle", reason="partition finished; waiting for SIGTERM")
    await stop.wait()
    log.info("worker.idle_stopped")
