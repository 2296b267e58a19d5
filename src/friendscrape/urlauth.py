"""Credentials written into a URL (``http://user:password@host``): taken out where the URL
enters, kept apart from it, and known to every redactor.

The URL that is left is the one shown, logged, stored and sent; the credentials travel
separately (as a Basic ``Authorization`` header for the base URL's own origin) and are
listed, in every form they may take on the wire or in a message, as secrets to redact.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

HIDDEN = "***"
"""What stands for the user name and password of a URL shown in a message."""


@dataclass(frozen=True, slots=True)
class UrlCredentials:
    """The user name and password of a URL, decoded; neither appears in a repr."""

    user: str = field(repr=False)
    password: str | None = field(repr=False)
    written: str = field(repr=False)
    """The userinfo as it was written (percent-encoded or not)."""

    def __str__(self) -> str:
        return f"{HIDDEN}@"

    def basic_header(self) -> str:
        """The ``Authorization`` value that presents these credentials (RFC 7617, UTF-8)."""
        return f"Basic {self._basic_token()}"

    def _basic_token(self) -> str:
        pair = f"{self.user}:{self.password or ''}"
        return base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """Every form of the secret a message or a page may echo: the password (the user
        name when there is none), the ``user:password`` pair, each decoded, as written
        and percent-encoded, and the Basic token sent for them."""
        if self.password:
            pair = f"{self.user}:{self.password}"
            encoded_pair = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            forms = [
                pair,
                self.written,
                encoded_pair,
                self.password,
                self.written.partition(":")[2],
                quote(self.password, safe=""),
            ]
        else:
            # No password: the user name is the credential (a token as user name).
            forms = [self.user, self.written.partition(":")[0], quote(self.user, safe="")]
        forms.append(self._basic_token())
        return tuple(dict.fromkeys(form for form in forms if form))


def split_credentials(url: str) -> tuple[str, UrlCredentials | None]:
    """``url`` without its ``user:password@`` part, and those credentials (None when it
    carries none). A URL that cannot be parsed comes back as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    written, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    clean = urlunsplit(parts._replace(netloc=host))
    if not written:
        return clean, None  # a bare "@": nothing to send
    user, colon, password = written.partition(":")
    return clean, UrlCredentials(unquote(user), unquote(password) if colon else None, written)


def has_credentials(url: str) -> bool:
    """Whether ``url`` names a user (and perhaps a password) before its host."""
    return split_credentials(url)[1] is not None


def shown(url: str) -> str:
    """``url`` fit for a message: any user name and password replaced by ``***``.

    A text too broken to parse keeps nothing before its last ``@``: whatever it is, it
    may be a password."""
    if "@" not in url:
        return url
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = None
    if netloc is not None and "://" in url and "@" not in netloc:
        return url  # the "@" is in the path (a handle such as /@alice), not a password
    clean, credentials = split_credentials(url)
    scheme, sep, rest = clean.partition("://")
    if netloc and credentials is not None and sep:
        return f"{scheme}{sep}{HIDDEN}@{rest}"
    return f"{HIDDEN}@{url.rpartition('@')[2]}"
