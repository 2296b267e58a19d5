"""Reading untrusted JSON API bodies: typed field access that fails with ParseError."""

from __future__ import annotations

import json
from typing import Any, Final

from friendscrape.errors import ParseError

DETAIL_MAX: Final = 200
"""Longest platform message kept in a user's error or detail."""


def load_json(body: bytes, url: str) -> Any:
    """The decoded JSON document of ``body``, or ParseError (empty, cut, not JSON)."""
    if not body.strip():
        raise ParseError("empty body where a JSON document was expected", url=url)
    try:
        return json.loads(body)
    except RecursionError:
        # The C decoder stops at the interpreter's recursion limit (about 1,000 levels,
        # reached in under a millisecond): no API response nests that deep.
        msg = "body is JSON nested too deeply to be an API response"
        raise ParseError(msg, url=url) from None
    except ValueError as exc:
        # Also UnicodeDecodeError, JSONDecodeError and a number over Python's 4,300-digit
        # conversion limit.
        msg = f"body is not valid JSON (cut short or not an API response): {exc}"
        raise ParseError(msg[:300], url=url) from None


def load_object(body: bytes, url: str) -> dict[str, Any]:
    """The body as a JSON object, or ParseError."""
    doc = load_json(body, url)
    if not isinstance(doc, dict):
        msg = f"expected a JSON object, got {type(doc).__name__}"
        raise ParseError(msg, url=url)
    return doc


def text_field(obj: dict[str, Any], key: str, where: str, url: str) -> str:
    """A required non-empty string field, or ParseError naming ``where``."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        msg = f"{where} has no {key!r} string"
        raise ParseError(msg, url=url)
    return value


def optional_text(obj: dict[str, Any], key: str, where: str, url: str) -> str | None:
    """An optional string field: None when absent or null, ParseError when not a string."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        msg = f"{where} has a {key!r} that is not a non-empty string"
        raise ParseError(msg, url=url)
    return value


def optional_count(obj: dict[str, Any], key: str, where: str, url: str) -> int | None:
    """An optional non-negative integer field (booleans refused), or ParseError."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{where} has a {key!r} that is not a count: {str(value)[:40]!r}"
        raise ParseError(msg, url=url)
    return value


def list_field(obj: dict[str, Any], key: str, where: str, url: str) -> list[Any] | None:
    """An optional list field: None when absent, ParseError when not a list."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        msg = f"{where} has a {key!r} that is not a list"
        raise ParseError(msg, url=url)
    return value


def clip(text: object) -> str:
    """A platform message with whitespace collapsed, capped for storage."""
    return " ".join(str(text).split())[:DETAIL_MAX]
