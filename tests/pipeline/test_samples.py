"""Run samples: a failed write loses no count (the next sample carries it), and the
upstream recorded is host[:port] alone, marked simulated only on a loopback host."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest
from structlog.testing import capture_logs

from friendscrape.core.samples import SampleFigures, SampleRecorder, Upstream, sampling
from friendscrape.errors import StoreTransientError
from friendscrape.stores.base import RunSample, RunStore


class SampleSink:
    """Takes samples, refusing the writes numbered in ``refuse`` (1-based)."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.refuse = refuse or set()
        self.calls = 0
        self.samples: list[RunSample] = []
        self.written = asyncio.Event()

    async def record_sample(self, sample: RunSample) -> None:
        self.calls += 1
        if self.calls in self.refuse:
            msg = "database is locked"
            raise StoreTransientError(msg)
        self.samples.append(sample)
        self.written.set()


def recorder(sink: SampleSink, figures: list[SampleFigures]) -> SampleRecorder:
    return SampleRecorder(
        cast("RunStore", sink),
        lambda: figures[-1],
        run_id="run-1",
        partition=3,
        source="x-api",
        upstream=Upstream.of("http://127.0.0.1:8080/base"),
        clock=lambda: datetime(2024, 1, 1, tzinfo=UTC),
    )


async def test_a_failed_write_is_logged_and_its_counts_go_into_the_next() -> None:
    sink = SampleSink(refuse={2})
    figures = [SampleFigures()]
    rec = recorder(sink, figures)
    assert await rec.record()
    figures.append(SampleFigures(users_done=5, pages=20, rate_limited=2, paused_seconds=1.5))
    with capture_logs() as logs:
        assert not await rec.record()
    assert [e["event"] for e in logs] == ["samples.write_failed"]
    figures.append(SampleFigures(users_done=9, pages=31, rate_limited=3, paused_seconds=2.0))
    assert await rec.record(final=True)

    assert [(s.users_done, s.pages, s.rate_limited) for s in sink.samples] == [
        (0, 0, 0),
        (9, 31, 3),
    ]
    assert sink.samples[1].paused_seconds == pytest.approx(2.0)
    assert sink.samples[1].final
    assert sink.samples[1].upstream_host == "127.0.0.1:8080"
    assert sink.samples[1].simulated


async def test_sampling_writes_at_start_and_a_final_one() -> None:
    sink = SampleSink()
    figures = [SampleFigures()]
    rec = recorder(sink, figures)
    async with sampling(rec, every=3600):
        await sink.written.wait()  # the start sample, written by the sampling task
        figures.append(SampleFigures(users_done=4, pages=8))
    assert [(s.users_done, s.pages, s.final) for s in sink.samples] == [
        (0, 0, False),
        (4, 8, True),
    ]


@pytest.mark.parametrize(
    ("url", "host", "simulated"),
    [
        ("http://127.0.0.1:8080/some/path?x=1", "127.0.0.1:8080", True),
        ("https://user:secret-token@api.x.com/2", "api.x.com", False),
        ("http://localhost:9000", "localhost:9000", True),
        ("http://[::1]:7000/", "[::1]:7000", True),
        ("https://mastodon.social", "mastodon.social", False),
        (None, "", False),
    ],
)
def test_the_upstream_is_its_host_and_port_only(
    url: str | None, host: str, simulated: bool
) -> None:
    upstream = Upstream.of(url)
    assert (upstream.host, upstream.simulated) == (host, simulated)
