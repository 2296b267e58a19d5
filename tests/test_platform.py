"""Partition numbers from the platform's environment, and the idle wait of a finished worker."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from friendscrape.errors import UsageError
from friendscrape.worker import (
    PARTITION_ENV_NAMES,
    choose_partition,
    idle_forever,
    resolve_partition,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("7", 7), (" 10 ", 10), ("0010", 10)],
)
def test_explicit_partition_number(value: str, expected: int) -> None:
    assert resolve_partition(value, {}) == expected


def test_explicit_number_ignores_the_platform() -> None:
    environ = {"FRIENDSCRAPE_PARTITION": "4", "DYNO": "worker.9"}
    assert choose_partition("2", environ) == choose_partition("2", {})
    assert choose_partition("2", environ).source == "--partition"


@pytest.mark.parametrize(
    ("environ", "expected", "source"),
    [
        ({"FRIENDSCRAPE_PARTITION": "5"}, 5, "FRIENDSCRAPE_PARTITION"),
        ({"DYNO": "worker.3"}, 3, "DYNO"),
        ({"DYNO": "worker.10"}, 10, "DYNO"),
        ({"JOB_COMPLETION_INDEX": "0"}, 1, "JOB_COMPLETION_INDEX"),
        ({"JOB_COMPLETION_INDEX": "9"}, 10, "JOB_COMPLETION_INDEX"),
        ({"CLOUD_RUN_TASK_INDEX": "0"}, 1, "CLOUD_RUN_TASK_INDEX"),
        ({"CLOUD_RUN_TASK_INDEX": "4"}, 5, "CLOUD_RUN_TASK_INDEX"),
    ],
)
def test_auto_reads_each_platform(environ: dict[str, str], expected: int, source: str) -> None:
    choice = choose_partition("auto", environ)
    assert (choice.number, choice.source) == (expected, source)
    assert resolve_partition("AUTO", environ) == expected


def test_auto_precedence_is_explicit_then_heroku_then_kubernetes_then_cloud_run() -> None:
    environ = {
        "CLOUD_RUN_TASK_INDEX": "0",
        "JOB_COMPLETION_INDEX": "1",
        "DYNO": "worker.3",
        "FRIENDSCRAPE_PARTITION": "4",
    }
    assert PARTITION_ENV_NAMES == (
        "FRIENDSCRAPE_PARTITION",
        "DYNO",
        "JOB_COMPLETION_INDEX",
        "CLOUD_RUN_TASK_INDEX",
    )
    seen = []
    for name in PARTITION_ENV_NAMES:
        choice = choose_partition("auto", environ)
        seen.append((choice.source, choice.number))
        del environ[name]
    assert seen == [
        ("FRIENDSCRAPE_PARTITION", 4),
        ("DYNO", 3),
        ("JOB_COMPLETION_INDEX", 2),
        ("CLOUD_RUN_TASK_INDEX", 1),
    ]


def test_empty_values_count_as_unset() -> None:
    environ = {"FRIENDSCRAPE_PARTITION": "", "DYNO": "  ", "JOB_COMPLETION_INDEX": "2"}
    assert choose_partition("auto", environ).source == "JOB_COMPLETION_INDEX"


def test_a_bad_higher_precedence_value_is_an_error_not_skipped() -> None:
    # A typo in FRIENDSCRAPE_PARTITION must not silently run the platform's partition.
    with pytest.raises(UsageError, match="FRIENDSCRAPE_PARTITION"):
        resolve_partition("auto", {"FRIENDSCRAPE_PARTITION": "three", "DYNO": "worker.3"})


def test_auto_with_nothing_set_names_what_it_looked_for() -> None:
    with pytest.raises(UsageError) as caught:
        resolve_partition("auto", {"HOME": "/root", "PORT": "8080"})
    message = str(caught.value)
    assert "\n" not in message
    for name in PARTITION_ENV_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("dyno", "words"),
    [
        ("web.1", "not a worker dyno"),
        ("run.1234", "not a worker dyno"),
        ("scheduler.2", "not a worker dyno"),
        ("worker-23z34x56y-w78k9", "no dyno number"),
        ("worker", "no dyno number"),
        ("worker.", "no dyno number"),
        ("worker.0", "numbered from 1"),
    ],
)
def test_dynos_that_are_not_numbered_workers_are_refused(dyno: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as caught:
        resolve_partition("auto", {"DYNO": dyno})
    assert dyno in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", ["three", "1.5", "-1", "+3", "3_0", "٣", "", "0x3"])
def test_non_numeric_explicit_values_are_refused(value: str) -> None:
    with pytest.raises(UsageError, match="--partition"):
        resolve_partition(value, {})


@pytest.mark.parametrize("value", ["0", "-2"])
def test_zero_and_negative_partitions_are_refused(value: str) -> None:
    with pytest.raises(UsageError):
        resolve_partition(value, {})
    with pytest.raises(UsageError, match="FRIENDSCRAPE_PARTITION"):
        resolve_partition("auto", {"FRIENDSCRAPE_PARTITION": value})


@pytest.mark.parametrize("name", ["JOB_COMPLETION_INDEX", "CLOUD_RUN_TASK_INDEX"])
@pytest.mark.parametrize("value", ["-1", "one", "1.0"])
def test_bad_zero_based_indexes_are_refused(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        resolve_partition("auto", {name: value})


async def test_idle_forever_waits_until_stop_is_set() -> None:
    stop = asyncio.Event()
    with capture_logs() as logs:
        idle = asyncio.create_task(idle_forever(stop))
        # Let the task run as far as it can on its own: it must park on the Event.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not idle.done()
        assert [entry["event"] for entry in logs] == ["worker.idle"]
        stop.set()
        async with asyncio.timeout(5):
            await idle
    assert [entry["event"] for entry in logs] == ["worker.idle", "worker.idle_stopped"]


async def test_idle_forever_returns_at_once_when_already_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    async with asyncio.timeout(5):
        await idle_forever(stop)


async def test_idle_forever_can_be_cancelled() -> None:
    idle = asyncio.create_task(idle_forever(asyncio.Event()))
    await asyncio.sleep(0)
    idle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await idle
