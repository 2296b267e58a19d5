"""Secrets out of saved results: every configured secret is replaced by its fingerprint.

A hostile or careless upstream can echo the request's bearer token in a page (as an
account's name) or in an error body; whatever a run saves passes through here first, so
the store and every export show ``[redacted token#2]`` instead of the token.
"""

from __future__ import annotations

from collections.abc import Mapping

from friendscrape.credentials import Credentials

_JOINED = ("friend_names", "friend_ids")
"""The lists whose joined text a result's ``joined`` holds, in its order."""


def configured_secrets(credentials: Credentials) -> dict[str, str]:
    """Each secret value of ``credentials`` and the placeholder that replaces it: a bearer
    token by its pool fingerprint (``token#N``), the user name and password of the base
    URL (every form of them: ``UrlCredentials.secrets``) as ``base_url password``, any
    other secret setting by its name."""
    secrets: dict[str, str] = {}
    for n, token in enumerate(credentials.tokens, 1):
        secrets.setdefault(token, f"[redacted token#{n}]")
    for name, value in credentials.named:
        secrets.setdefault(value, f"[redacted {name}]")
    for secret in credentials.base_url:
        secrets.setdefault(secret, "[redacted base_url password]")
    return secrets


def secret_values(credentials: Credentials) -> list[str]:
    """Every secret value of ``credentials``, longest first (a secret that holds another
    is replaced whole), for the log redactor."""
    return sorted(configured_secrets(credentials), key=len, reverse=True)


class Redactor:
    """Replaces secrets in the text fields of a result; free when none is configured."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest first, so a token that contains another is replaced whole.
        self._secrets = sorted(secrets.items(), key=lambda item: -len(item[0]))

    @classmethod
    def of(cls, credentials: Credentials) -> Redactor:
        """The redactor of every secret ``credentials`` holds."""
        return cls(configured_secrets(credentials))

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by its placeholder."""
        for secret, placeholder in self._secrets:
            if secret in value:
                value = value.replace(secret, placeholder)
        return value

    def fields(self, fields: dict[str, object]) -> dict[str, object]:
        """A result's keyword fields with secrets replaced in its error and friend lists.
        The lists' joined text (``joined``, as the parser made it) is searched instead of
        joining them again, and left out once a list is changed: it is theirs no more."""
        if not self._secrets:
            return fields
        clean = dict(fields)
        joined = fields.get("joined")
        texts = dict(zip(_JOINED, joined, strict=True)) if isinstance(joined, tuple) else {}
        for key, value in fields.items():
            if key == "joined":
                continue
            if isinstance(value, str):
                clean[key] = self.text(value)
            elif isinstance(value, tuple) and any(isinstance(item, str) for item in value):
                if not self._in_any(value, texts.get(key)):
                    continue  # the common case: a list of 1,000 names is searched in C
                clean[key] = tuple(
                    self.text(item) if isinstance(item, str) else item for item in value
                )
                clean["joined"] = None
        return clean

    def _in_any(self, values: tuple[object, ...], joined: object = None) -> bool:
        """Whether some secret may be in some string of ``values`` (``joined``: their text
        joined by line feeds, when known): one search of them all joined per secret. Never
        a miss (a string holding a secret puts it in the joined text); a secret across two
        strings only sends them down the exact path."""
        if not isinstance(joined, str):
            joined = "\n".join(value for value in values if isinstance(value, str))
        return any(secret in joined for secret, _ in self._secrets)
