"""Memory stays bounded at high concurrency: a small case of benchmarks/memory.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "memory.py"
# The run holds 200 users in flight, each up to 2,000 names, plus the writer's queue:
# a copy of everything at once would be far above this bound.
BOUND_MB = 200.0


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("friendscrape_memory_benchmark", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_peak_rss_at_concurrency_200_stays_bounded() -> None:
    result = _benchmark().measure(
        users=300,
        concurrency=200,
        max_friends=2000,
        mean_friends=1000.0,
        page_size=100,
        timeout=60.0,
    )
    assert result.exit_code == 0
    assert result.users == 300
    assert 20.0 < result.peak_rss_mb < BOUND_MB, result
