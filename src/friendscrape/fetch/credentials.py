"""Credential pools: several API tokens for one host, each with its own quota window.

Requests go to the credential that can start soonest (quota left and its spacing due);
when every credential is spent, the host waits for the earliest reset. The limiter
attaches the chosen credential as ``Authorization: Bearer <token>`` and feeds the
response's rate-limit headers back into that credential's window, so a source never
handles tokens. A token never appears in a repr, a log line or an error: only its
fingerprint (``token#2``, by position in the configured list) does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from friendscrape.errors import UsageError
from friendscrape.fetch.quota import Quota


@dataclass(frozen=True, slots=True)
class Credential:
    """One bearer token; its repr and str show only the fingerprint."""

    fingerprint: str
    _token: str = field(repr=False)

    def __str__(self) -> str:
        return self.fingerprint

    def headers(self) -> Mapping[str, str]:
        """The request headers that present this credential."""
        return {"Authorization": f"Bearer {self._token}"}


@dataclass(slots=True)
class _Entry:
    credential: Credential
    quota: Quota


class CredentialPool:
    """The credentials of one host and their windows; see the module docstring."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens:
            msg = "a credential pool needs at least one token"
            raise UsageError(msg)
        self._entries = [
            _Entry(Credential(f"token#{n}", token), Quota()) for n, token in enumerate(tokens, 1)
        ]

    def __repr__(self) -> str:
        return f"CredentialPool({', '.join(e.credential.fingerprint for e in self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def choose(self, now: float) -> tuple[Credential, float]:
        """The credential that can start soonest and the seconds until it can (0: now).

        Ties go to the one with the most quota left, so windows drain evenly."""
        best = min(
            self._entries,
            key=lambda e: (e.quota.wait(now), -(e.quota.remaining or 0)),
        )
        return best.credential, best.quota.wait(now)

    def all_spent(self, now: float) -> bool:
        """Whether every credential's window is spent until its reset."""
        return all(e.quota.spent(now) for e in self._entries)

    def quota(self, fingerprint: str) -> Quota:
        """The window of the credential with ``fingerprint`` (one of this pool's)."""
        for entry in self._entries:
            if entry.credential.fingerprint == fingerprint:
                return entry.quota
        msg = f"{fingerprint} is not in this pool"
        raise KeyError(msg)
