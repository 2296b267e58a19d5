"""Shared test fixtures: logging reset, and aioresponses made to work with aiohttp 3.14."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import structlog
from aioresponses import aioresponses

from storefixtures import bq_dataset, bq_emulator, store, store_settings

__all__ = ["bq_dataset", "bq_emulator", "store", "store_settings"]


class _NoWriter:
    """Stands in for the stream writer aiohttp 3.14 requires of every ClientResponse."""

    output_size = 0


class CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without `stream_writer`, which aiohttp 3.14
    requires (pnuckowski/aioresponses issue #289, fix proposed in PR #288). Delete this
    class once aioresponses passes it itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoWriter())
        super().__init__(*args, **kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--recipe-python",
        default=None,
        help="the interpreter the docs' Python recipes run with in "
        "tests/export/test_docs_snippets.py (default: the one running the tests)",
    )


_NEEDS_COMPAT = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@pytest.fixture
def mock_http() -> Iterator[Any]:
    """aioresponses at the HTTP seam, with the aiohttp 3.14 compatibility response class."""

    class Compat(aioresponses):  # type: ignore[misc]
        def add(self, *args: Any, **kwargs: Any) -> None:
            if _NEEDS_COMPAT:
                kwargs.setdefault("response_class", CompatResponse)
            super().add(*args, **kwargs)

    with Compat() as mocked:
        yield mocked


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
