"""Reading untrusted JSON API bodies: typed field access that fails with ParseError.

A list page is read twice at most. First in bulk: ``decode_typed`` decodes it straight
into a parser's typed structs (msgspec: no dict per item, fields the parser does not
read are skipped, and it is stricter JSON than ``json``), and ``all_fullmatch`` checks a
field of every item with one regex match. A page that passes is what the site sends,
and the result is the one the careful reading would give. Anything else, including any
body those two refuse, is read again the careful way (``load_json`` and the typed field
helpers below), item by item, which names what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, TypeVar

import msgspec

from friendscrape.errors import NotPlatformAnswerError, ParseError

_T = TypeVar("_T")

DETAIL_MAX: Final = 200
"""Longest platform message kept in a user's error or detail."""

# The first bytes of a body that is not JSON, shown in its error (whitespace skipped).
_OPENING_RE: Final = re.compile(rb"\s*(\S[^\r\n]{0,39})")


def load_json(body: bytes, url: str) -> Any:
    """The decoded JSON document of ``body``, or ParseError (cut short, nested too deep).

    An empty body, or one that is not JSON from its first byte (an HTML page, text), is
    no API's answer: ``NotPlatformAnswerError``. A body that starts as JSON but does not
    decode may be the platform's answer cut short: a plain ``ParseError``.
    """
    if not body or body.isspace():  # not strip(): that would copy the whole body
        msg = "empty body where a JSON document was expected"
        raise NotPlatformAnswerError(msg, url=url)
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
        opening = _OPENING_RE.match(body)
        start = opening.group(1) if opening is not None else b""
        if start[:1] not in {b"{", b"["}:
            # Every answer the platforms send is an object or an array.
            shown = " ".join(start.decode("utf-8", "replace").split())
            msg = f"body is not JSON (it begins {shown!r}): not an API response"
            raise NotPlatformAnswerError(msg, url=url) from None
        msg = f"body is not valid JSON (cut short or not an API response): {exc}"
        raise ParseError(msg[:300], url=url) from None


def load_object(body: bytes, url: str) -> dict[str, Any]:
    """The body as a JSON object, or ParseError (NotPlatformAnswerError when it is JSON
    of another kind: an array, a string, a number)."""
    doc = load_json(body, url)
    if not isinstance(doc, dict):
        msg = f"expected a JSON object, got {type(doc).__name__}"
        raise NotPlatformAnswerError(msg, url=url)
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


def list_field(
    obj: dict[str, Any],
    key: str,
    where: str,
    url: str,
    *,
    error: type[ParseError] = ParseError,
) -> list[Any] | None:
    """An optional list field: None when absent, ``error`` when not a list (a response's
    own top-level field of the wrong type: NotPlatformAnswerError)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        msg = f"{where} has a {key!r} that is not a list"
        raise error(msg, url=url)
    return value


def clip(text: object) -> str:
    """A platform message with whitespace collapsed, capped for storage."""
    return " ".join(str(text).split())[:DETAIL_MAX]


def decode_typed(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T | None:
    """``body`` decoded into ``decoder``'s types, or None when it does not fit them (not
    JSON, another shape, nested too deeply): the caller then reads it the careful way."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        # DecodeError covers ValidationError; ValueError covers UnicodeDecodeError.
        return None


def lines_re(item: str) -> re.Pattern[str]:
    """A pattern that fullmatches values joined by newlines when each value fullmatches
    ``item`` (a pattern that never matches a newline, and whose first match at a
    position is its longest: greedy, alternatives longest first).

    The repeat is possessive: once a line is matched the engine does not go back to
    try it another way, which on a page of 1,000 ids or names costs about 0.6x the
    time of a repeat that keeps every way open. With such an ``item`` no other way
    could end at the newline either; tests/parse/test_bulk_checks.py holds every
    pattern in use to that."""
    return re.compile(f"(?:{item})(?:\\n(?:{item}))*+")


def ascii_charset(characters: str) -> bytes:
    """``characters`` (ASCII) and the newline, for ``all_made_of``."""
    return (characters + "\n").encode("ascii")


def all_made_of(allowed: bytes, values: list[str]) -> bool:
    """Whether every one of ``values`` is made of the ASCII characters in ``allowed`` (made
    by ``ascii_charset``) only: one pass in C over all of them, about half the time of a
    regex match. Lengths are not checked: the typed decoder bounds them."""
    return joined_made_of(allowed, values) is not None


def unescaped(body: bytes) -> bool:
    """Whether a JSON body holds no escape (no backslash): then no string it decodes to
    holds a line feed, or any control character, as JSON allows those in a string only
    escaped (both decoders refuse them raw). One search in C, where counting the line
    feeds of a page's 1,000 names and ids cost some 7 microseconds."""
    return b"\\" not in body


def joined_made_of(allowed: bytes, values: list[str], *, line_free: bool = False) -> str | None:
    """``values`` joined by line feeds when ``all_made_of`` holds (no value then holds a
    line feed), else None: the text the check is made on, kept for the store.
    ``line_free``: the caller knows no value holds a line feed (``unescaped``), so
    they are not counted."""
    joined = "\n".join(values)
    if not values:
        return joined
    if not joined.isascii():
        return None
    data = joined.encode("ascii")
    # Nothing left once the allowed bytes are deleted; as many newlines as joints.
    if data.translate(None, allowed) or (not line_free and data.count(b"\n") != len(values) - 1):
        return None
    return joined


def all_fullmatch(lines: re.Pattern[str], values: list[str]) -> bool:
    """Whether every one of ``values`` fullmatches the item pattern of ``lines`` (made by
    ``lines_re``), checked with one match over all of them."""
    return joined_fullmatch(lines, values) is not None


def joined_fullmatch(
    lines: re.Pattern[str], values: list[str], *, line_free: bool = False
) -> str | None:
    """``values`` joined by line feeds when ``all_fullmatch`` holds (no value then holds
    a line feed), else None: the text the check is made on, kept for the store.
    ``line_free`` as for ``joined_made_of``."""
    joined = "\n".join(values)
    if not values:
        return joined
    # As many newlines as joints: no value holds one, so no value was split in two.
    if (not line_free and joined.count("\n") != len(values) - 1) or lines.fullmatch(joined) is None:
        return None
    return joined
