"""The secrets the settings hold, read out of them in one place: the X API bearer tokens
(in the order of the pool), the base URL's user name and password, and any other secret
setting.

``Settings.credentials()`` builds one; it is handed to whoever needs a secret: the
limiter takes the tokens (``fetch/credentials.py`` makes them a pool) and the redactors
of results and logs take every value (``core/redaction.py``). This module imports
nothing of friendscrape, so every layer may take one; no value shows in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secrets of one set of settings, parsed; the repr names none of them."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    """The X API bearer tokens, as configured (``token#1`` first); none when unset."""
    named: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(setting name, value) of every other secret setting that holds a value."""
    base_url: tuple[str, ...] = field(default=(), repr=False)
    """Every form of the base URL's user name and password (``UrlCredentials.secrets``)."""


def parse_tokens(secret: SecretStr | None) -> list[str]:
    """The tokens of a comma-separated secret, blanks dropped (none when unset)."""
    if secret is None:
        return []
    return [token.strip() for token in secret.get_secret_value().split(",") if token.strip()]
