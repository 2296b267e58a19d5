"""What crosses the HTTP seam: the GET to send and the response as received."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One GET to send: the URL and any extra headers."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response as received: final URL, status, headers (lower-cased names), body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
