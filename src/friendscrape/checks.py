"""Checks of values that come from users, shared by the settings model: numbers, URLs, headers.

Each raises ValueError with a message that never repeats a secret's value.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from friendscrape.urlauth import HIDDEN, shown

# Bounds every number setting shares, so a setting added later cannot forget them: a
# float is 0 or from a millisecond (or 0.001 of anything) to a billion, finite; an int
# fits in a double and in every store's integer column.
MIN_POSITIVE_FLOAT = 1e-3
MAX_FLOAT = 1e9
MAX_INT = 2**53


def bounded_number(value: object) -> None:
    """ValueError when ``value`` is a float or int outside the shared bounds."""
    if isinstance(value, bool):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = "must be a finite number"
            raise ValueError(msg)
        if value != 0 and not MIN_POSITIVE_FLOAT <= abs(value) <= MAX_FLOAT:
            msg = f"must be 0 or from {MIN_POSITIVE_FLOAT:g} to {MAX_FLOAT:g}"
            raise ValueError(msg)
    elif isinstance(value, int) and abs(value) > MAX_INT:
        msg = f"must be at most {MAX_INT}"
        raise ValueError(msg)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (CR, LF, NUL, DEL...)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def no_control(text: str) -> None:
    """ValueError when ``text`` holds a control character: it could split an HTTP header
    or a log line."""
    if has_control(text):
        msg = "must not contain control characters (CR, LF, tab...)"
        raise ValueError(msg)


def http_url(text: str) -> str:
    """``http(s)://host[:port][/path]`` without its trailing slash; ValueError otherwise.

    A user name and password before the host are allowed (the settings take them out);
    a message shows them as ``***``."""
    no_control(text)
    seen = shown(text)
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError as exc:
        # The parser's reason may quote the URL's authority (an NFKC-unsafe netloc).
        userinfo = text.partition("://")[2].rpartition("@")[0]
        reason = str(exc).replace(userinfo, HIDDEN) if userinfo else str(exc)
        msg = f"must be an http(s)://host[:port][/path] URL, got {seen!r} ({reason})"
        raise ValueError(msg) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname or " " in text:
        msg = f"must be an http(s)://host[:port][/path] URL, got {seen!r}"
        raise ValueError(msg)
    if port == 0:
        msg = f"port must be 1-65535, got {seen!r}"
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = f"must not carry a query or fragment, got {seen!r}"
        raise ValueError(msg)
    return text


def no_credentials(text: str, what: str) -> None:
    """ValueError, without repeating them, when ``text`` (a URL or ``HOST:PORT``) names a
    user or password before its host: ``what`` takes none."""
    host_part = text.partition("://")[2] if "://" in text else text
    if "@" in re.split(r"[/?#]", host_part, maxsplit=1)[0]:
        msg = f"must not carry a user name or password (user:password@host): {what}"
        raise ValueError(msg)


def bearer_tokens(text: str) -> None:
    """ValueError unless every comma-separated token is visible ASCII (RFC 6750's token
    characters and more), so it cannot split or corrupt the Authorization header."""
    for n, token in enumerate((t.strip() for t in text.split(",") if t.strip()), 1):
        if not all(33 <= ord(ch) <= 126 for ch in token):
            msg = f"token#{n} must be visible ASCII characters only"
            raise ValueError(msg)


PROJECT_RULE = (
    "a project id is 6 to 30 characters: lowercase letters, digits and hyphens, starting "
    "with a letter and not ending with a hyphen"
)
DATASET_RULE = "a dataset name is letters, digits and underscores, at most 1024"
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DOMAIN = re.compile(r"[a-z][a-z0-9.-]{0,61}[a-z0-9]")  # of a domain-scoped id, domain:project
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")


def _project_fault(project: str) -> str | None:
    domain, colon, name = project.rpartition(":")
    if colon and not _DOMAIN.fullmatch(domain):
        return f"the domain of project id {project!r} is not a domain name"
    if _PROJECT.fullmatch(name):
        return None
    if not name:
        return "no project id"
    if not 6 <= len(name) <= 30:  # BigQuery's documented bounds
        return f"project id {name!r} is {len(name)} character{'s' * (len(name) != 1)} long"
    bad = sorted({ch for ch in name if not (ch.islower() or ch.isdigit() or ch == "-")})
    if bad:
        return f"project id {name!r} has {', '.join(map(repr, bad))}"
    if not name[0].isalpha():
        return f"project id {name!r} starts with {name[0]!r}"
    return f"project id {name!r} ends with a hyphen"


def _dataset_fault(dataset: str) -> str | None:
    if _DATASET.fullmatch(dataset):
        return None
    if not dataset:
        return "no dataset name"
    if len(dataset) > 1024:  # BigQuery's documented bounds
        return f"the dataset name is {len(dataset)} characters long"
    bad = sorted({ch for ch in dataset if not (ch.isascii() and (ch.isalnum() or ch == "_"))})
    return f"dataset name {dataset!r} has {', '.join(map(repr, bad))}"


def bigquery_store(url: str) -> tuple[str, str]:
    """``(project, dataset)`` of ``bigquery://PROJECT/DATASET``; otherwise a ValueError
    that says what is wrong and the rule, e.g. ``bigquery://x/y: project id 'x' has 1
    characters; a project id is 6 to 30 characters: ...``."""
    rest = url.removeprefix("bigquery://")
    project, slash, dataset = rest.partition("/")
    if not slash:
        msg = f"{url}: no dataset; use bigquery://PROJECT/DATASET"
        raise ValueError(msg)
    fault = _project_fault(project)
    if fault is not None:
        msg = f"{url}: {fault}; {PROJECT_RULE}"
        raise ValueError(msg)
    fault = _dataset_fault(dataset)
    if fault is not None:
        msg = f"{url}: {fault}; {DATASET_RULE}"
        raise ValueError(msg)
    return project, dataset
