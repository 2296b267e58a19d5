"""A deterministic synthetic follow graph: the accounts to collect and who each one follows.

Everything is derived from ``(seed, index)`` with an integer hash, so the graph costs
almost no memory whatever its size and the same seed always gives the same graph (a
graph of N users is a prefix of one of N+1). Nothing is stored per account:

- Screen names live in a name space of ``NAME_SPACE`` indices. Name ``n`` is a short
  stem (words, digits, underscores) followed by a five-character base-36 code that
  encodes ``n`` through a seeded permutation, so a screen name maps back to its index in
  O(1) and names are unique, even ignoring letter case.
- The users to collect are indices ``0 .. users-1``; their user ids are numeric strings,
  either short (early accounts) or 18-19 digit snowflake-like numbers, all distinct.
- Friends are other names of the same space (most are not users to collect). Account
  ``a`` follows ``start_a + k * step_a (mod NAME_SPACE)`` for ``k < following_count``:
  the k-th friend costs O(1), a page of 20 costs 20 hashes, and "does ``a`` follow
  ``x``" is one modular inverse.

Kinds (shares of the users): about 0.5 % ``invalid`` (screen name too long or with a dash
or dot, which a collector must reject without a request), 1 % ``not_found`` (the name does
not exist on the site), 1 % ``suspended``, 2 % ``protected``, the rest ``ok``. Following
counts are lognormal with mean near ``mean_friends`` (about 4 % above 2,000) and about 3 %
zero, for every kind.

With ``hostile=True`` the graph also holds a few users whose pages are built to trip up
a collector (see ``HOSTILE_ACCOUNTS``); ``expected()`` gives them status ``failed``: a
collector must not record any of them as ``ok``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from friendscrape.models import Status

NAME_SPACE: Final = 49_999_991
"""How many distinct screen names exist (a prime, so every step walks all of them)."""

_CODE_LEN: Final = 5
_CODE_SPACE: Final = 36**_CODE_LEN
_DIGITS36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_MASK64: Final = (1 << 64) - 1
_SCREEN_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,15}")

# Lognormal spread of following counts: with sigma 1.05 about 4 % of the non-zero
# counts exceed 2,000 when the mean is 550, as in samples of real Twitter accounts.
_SIGMA: Final = 1.05
_ZERO_SHARE: Final = 0.03
_MAX_FRIENDS: Final = 100_000
# Cumulative shares of the account kinds, drawn from one uniform number per user.
_KIND_CUTS: Final = (
    (0.005, "invalid"),
    (0.015, "not_found"),
    (0.025, "suspended"),
    (0.045, "protected"),
)
# Share of users whose following_count is left empty in the import file (a hint only).
_NO_HINT_SHARE: Final = 0.15

# User ids: short early-account ids, or long snowflake-like ones; ids of followed
# accounts that are not users to collect start above every user id.
_SHORT_ID_BASE: Final = 10_000
_SHORT_ID_STRIDE: Final = 2_000
_LONG_ID_BASE: Final = 700_000_000_000_000_000
_LONG_ID_STRIDE: Final = 400_000_000_000
_FRIEND_ID_BASE: Final = 15_000_000_000_000_000_000

# Hash tags: one per independent property of an index.
_T_NAME, _T_KIND, _T_ZERO, _T_COUNT1, _T_COUNT2, _T_ID = 1, 2, 3, 4, 5, 6
_T_START, _T_STEP, _T_INVALID, _T_HINT, _T_CHURN = 7, 8, 9, 10, 11

# Churn between waves: of the accounts a wave changes, this share is suspended or
# deleted (half each); the others gain or lose 1-5 follows at the end of their walk.
_GONE_SHARE: Final = 0.04
_WAVE_SHIFT: Final = 40


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """A word list written as text."""
    return tuple(text.split(sep))


_FIRST: Final = _words(
    "ada grace linus margaret alan barbara ken dennis radia frances john mary li wei "
    "sofia omar amara kofi yuki hana lucas mateo noor zara ivan olga pierre chloe raj "
    "priya diego ana tom kim leo mia sam eva ben ida"
)
_WORDS: Final = _words(
    "coffee code data pixel river cloud tiger maple rocket ocean forest music books "
    "chess garden sunset robot quartz ember falcon lunar urban atlas delta nova orbit "
    "piano comet cedar harbor news daily tech art photo travel"
)


def _stem(style: int, first: str, word: str) -> str:
    """The readable front of a screen name (up to 10 characters) in one of 8 styles."""
    stems = (
        first,
        f"{first}_{word}",
        first.capitalize() + word.capitalize(),
        f"_{word}",
        word,  # style 4 appends two digits to the word
        "",
        first[0].upper() + word,
        f"{first}_",
    )
    return stems[style][:10]


_STEMS: Final = tuple(
    _stem(style, first, word) for style in range(8) for first in _FIRST for word in _WORDS
)
# Base-36 pairs, least significant digit first, to write a five-character code fast.
_CODE2: Final = tuple(_DIGITS36[i % 36] + _DIGITS36[i // 36] for i in range(36 * 36))


class AccountKind(StrEnum):
    """What the site shows for an account; the hostile kinds exist only with hostile=True."""

    OK = "ok"
    PROTECTED = "protected"
    SUSPENDED = "suspended"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    TRUNCATED = "truncated"
    CURSOR_LOOP = "cursor_loop"
    EMPTY_PAGES = "empty_pages"
    HUGE_BODY = "huge_body"
    OFFHOST_REDIRECT = "offhost_redirect"
    LOGIN_WALL = "login_wall"


HOSTILE_ACCOUNTS: Final[dict[str, tuple[AccountKind, int, str]]] = {
    # screen name: (kind, following count shown, why a collector must not record it ok)
    "zz_truncated": (
        AccountKind.TRUNCATED,
        57,
        "the second page is cut mid-tag (no </html>, no next link)",
    ),
    "zz_cursor_loop": (
        AccountKind.CURSOR_LOOP,
        100,
        "the third page links back to the second page's cursor, forever",
    ),
    "zz_empty_pages": (
        AccountKind.EMPTY_PAGES,
        40,
        "every page lists no users but links to a next page, forever",
    ),
    "zz_huge_page": (
        AccountKind.HUGE_BODY,
        30,
        "the first page is about 5 MB, far larger than any real page",
    ),
    "zz_redirect": (
        AccountKind.OFFHOST_REDIRECT,
        30,
        "every page redirects (302) to another host",
    ),
    "zz_login_wall": (
        AccountKind.LOGIN_WALL,
        30,
        "every page is a 200 login wall, not a following page",
    ),
}
"""The hostile users added with ``hostile=True``; each must end as ``failed``."""

_KIND_STATUS: Final = {
    AccountKind.OK: Status.OK,
    AccountKind.PROTECTED: Status.PROTECTED,
    AccountKind.SUSPENDED: Status.SUSPENDED,
    AccountKind.NOT_FOUND: Status.NOT_FOUND,
    AccountKind.INVALID: Status.INVALID,
}


@dataclass(frozen=True, slots=True)
class SimAccount:
    """One account to collect: ids, what the site shows for it, how many it follows.

    ``index`` is its place in the graph (the seed of its friend list); ``following_count``
    is the truth, also for accounts whose list the site does not show.
    """

    user_id: str
    screen_name: str
    kind: AccountKind
    following_count: int
    index: int

    @property
    def hostile(self) -> bool:
        """Whether the account's pages are built to trip up a collector."""
        return self.kind not in _KIND_STATUS


def _mix(value: int) -> int:
    """splitmix64's finaliser: a fast, well-spread bijection of 64-bit integers."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _unit(hashed: int) -> float:
    """A 64-bit hash as a float in [0, 1)."""
    return (hashed >> 11) * (1.0 / (1 << 53))


def is_valid_screen_name(name: str) -> bool:
    """Whether ``name`` could be a screen name on the site (1-15 of ``A-Za-z0-9_``)."""
    return _SCREEN_NAME_RE.fullmatch(name) is not None


class SyntheticGraph:
    """The accounts to collect and their friend lists, all computed on demand from the seed."""

    def __init__(
        self,
        users: int,
        seed: int = 7,
        mean_friends: float = 550.0,
        *,
        hostile: bool = False,
        wave: int = 1,
        churn: float = 0.0,
    ) -> None:
        if not 0 <= users <= NAME_SPACE // 2:
            msg = f"users must be between 0 and {NAME_SPACE // 2}, got {users}"
            raise ValueError(msg)
        if not 0 <= mean_friends <= 20_000 or math.isnan(mean_friends):
            msg = f"mean_friends must be between 0 and 20000, got {mean_friends}"
            raise ValueError(msg)
        if wave < 1 or not 0.0 <= churn <= 1.0:
            msg = f"wave must be >= 1 and churn between 0 and 1, got {wave} and {churn}"
            raise ValueError(msg)
        self.users = users
        self.seed = seed
        self.wave = wave
        self.churn = churn
        self.mean_friends = mean_friends
        self.hostile = hostile
        self.key = _mix(seed & _MASK64)
        perm = _mix(self.key ^ 0x5EED)
        # An affine permutation of the code space: the multiplier must be prime to 36.
        mult = perm % _CODE_SPACE | 1
        while mult % 3 == 0:
            mult += 2
        self._code_mult = mult
        self._code_add = (perm >> 32) % _CODE_SPACE
        self._code_inverse = pow(mult, -1, _CODE_SPACE)
        nonzero_mean = mean_friends / (1.0 - _ZERO_SHARE)
        self._mu = math.log(nonzero_mean) - _SIGMA * _SIGMA / 2 if nonzero_mean > 0 else None
        self._hostile: dict[str, SimAccount] = {}
        if hostile:
            for offset, (name, (kind, count, _why)) in enumerate(HOSTILE_ACCOUNTS.items()):
                index = users + offset
                self._hostile[name.casefold()] = SimAccount(
                    self._user_id(index), name, kind, count, index
                )

    def __repr__(self) -> str:
        return (
            f"SyntheticGraph(users={self.users}, seed={self.seed}, "
            f"mean_friends={self.mean_friends}, hostile={self.hostile}, "
            f"wave={self.wave}, churn={self.churn})"
        )

    # -- hashing ---------------------------------------------------------------------

    def hash(self, tag: int, index: int) -> int:
        """A 64-bit hash of ``(seed, tag, index)``; ``tag`` below 64 names the property."""
        return _mix((((self.key + index) & _MASK64) << 6 | tag) & _MASK64)

    # -- names -----------------------------------------------------------------------

    def name_of(self, n: int) -> str:
        """The screen name at index ``n`` of the name space (always a valid name)."""
        # The hot path of page rendering: the hash is inlined and stems come from a table.
        h = (((self.key + n) & _MASK64) << 6 | _T_NAME) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
        first, word = (h >> 8) % len(_FIRST), (h >> 16) % len(_WORDS)
        if h & 7 == 4:
            stem = f"{_WORDS[word]}{(h >> 24) % 100:02d}"
        else:
            stem = _STEMS[((h & 7) * len(_FIRST) + first) * len(_WORDS) + word]
        code = (n * self._code_mult + self._code_add) % _CODE_SPACE
        return stem + _CODE2[code % 1296] + _CODE2[code // 1296 % 1296] + _DIGITS36[code // 1296**2]

    def index_of(self, name: str) -> int | None:
        """The name-space index whose name is ``name`` (letter case ignored), or None."""
        if len(name) < _CODE_LEN or not name.isascii():
            return None
        code = name[-_CODE_LEN:].lower()
        if not code.isalnum():
            return None
        value = 0
        for char in reversed(code):
            value = value * 36 + _DIGITS36.index(char)
        n = ((value - self._code_add) * self._code_inverse) % _CODE_SPACE
        if n >= NAME_SPACE:
            return None
        return n

    def listed_index(self, name: str) -> int:
        """The index of a name this graph listed as a friend (ValueError for any other)."""
        n = self.index_of(name)
        if n is None:
            msg = f"{name!r} is not a name of this graph"
            raise ValueError(msg)
        return n

    # -- accounts --------------------------------------------------------------------

    def _user_id(self, index: int) -> str:
        """A distinct numeric id: a short early-account id or a long snowflake-like one."""
        h = self.hash(_T_ID, index)
        if h % 10 < 3:
            return str(_SHORT_ID_BASE + index * _SHORT_ID_STRIDE + (h >> 8) % _SHORT_ID_STRIDE)
        return str(_LONG_ID_BASE + index * _LONG_ID_STRIDE + (h >> 8) % _LONG_ID_STRIDE)

    def id_of(self, n: int) -> str:
        """The numeric user id of name-space index ``n``: a user's own id for the users
        to collect, else a distinct id above theirs (all below 2**64)."""
        if n < self.users:
            return self._user_id(n)
        return str(_FRIEND_ID_BASE + n)

    def account_by_id(self, user_id: str) -> SimAccount | None:
        """The account to collect whose user id is ``user_id``, or None (hostile ones too)."""
        if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 20:
            return None
        value = int(user_id)
        if value >= _LONG_ID_BASE:
            index = (value - _LONG_ID_BASE) // _LONG_ID_STRIDE
        else:
            index = (value - _SHORT_ID_BASE) // _SHORT_ID_STRIDE
        for account in self._hostile.values():
            if account.user_id == user_id:
                return account
        if not 0 <= index < self.users or self._user_id(index) != user_id:
            return None
        return self._user(index)

    def _following_count(self, index: int) -> int:
        if self._mu is None or _unit(self.hash(_T_ZERO, index)) < _ZERO_SHARE:
            return 0
        # Box-Muller: one standard normal from two uniforms.
        u1 = 1.0 - _unit(self.hash(_T_COUNT1, index))
        u2 = _unit(self.hash(_T_COUNT2, index))
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        return min(_MAX_FRIENDS, max(1, round(math.exp(self._mu + _SIGMA * z))))

    def _kind(self, index: int) -> AccountKind:
        u = _unit(self.hash(_T_KIND, index))
        for cut, kind in _KIND_CUTS:
            if u < cut:
                return AccountKind(kind)
        return AccountKind.OK

    def _invalid_name(self, index: int) -> str:
        """A screen name the site cannot have, still ending in the index's code."""
        valid = self.name_of(index)
        stem, code = valid[:-_CODE_LEN], valid[-_CODE_LEN:]
        variant = self.hash(_T_INVALID, index) % 3
        if variant == 0:
            return f"{stem[:9] or 'user'}-{code}"
        if variant == 1:
            return f"{(stem + '_official_acct')[:12]}{code}"
        return f"{stem[:9] or 'user'}.{code}"

    def _churned(self, index: int, kind: AccountKind, count: int) -> tuple[AccountKind, int]:
        """An account's kind and following count as of ``self.wave``: each wave after the
        first changes about ``churn`` of the ok accounts, deterministically (a hash of the
        index and the wave), so wave K's graph is wave K-1's with that wave's changes."""
        for wave in range(2, self.wave + 1):
            if kind is not AccountKind.OK:
                break
            h = self.hash(_T_CHURN, index + (wave << _WAVE_SHIFT))
            u = _unit(h)
            if u >= self.churn:
                continue
            if u < self.churn * _GONE_SHARE:
                kind = AccountKind.SUSPENDED if h & 1 else AccountKind.NOT_FOUND
                continue
            size = 1 + (h >> 8) % 5
            gain = bool((h >> 4) & 1) or count == 0
            count = min(_MAX_FRIENDS, count + size) if gain else max(0, count - size)
        return kind, count

    def _user(self, index: int) -> SimAccount:
        kind, count = self._kind(index), self._following_count(index)
        name = self._invalid_name(index) if kind is AccountKind.INVALID else self.name_of(index)
        if self.wave > 1 and self.churn > 0:
            kind, count = self._churned(index, kind, count)
        return SimAccount(self._user_id(index), name, kind, count, index)

    def accounts(self) -> Iterator[SimAccount]:
        """Every account to collect, in index order, then the hostile ones."""
        for index in range(self.users):
            yield self._user(index)
        yield from self._hostile.values()

    def account(self, screen_name: str) -> SimAccount | None:
        """The account to collect with this screen name (case ignored), or None."""
        hostile = self._hostile.get(screen_name.casefold())
        if hostile is not None:
            return hostile
        n = self.index_of(screen_name)
        if n is None or n >= self.users:
            return None
        account = self._user(n)
        if account.screen_name.casefold() != screen_name.casefold():
            return None
        return account

    def __len__(self) -> int:
        return self.users + len(self._hostile)

    # -- friend lists ----------------------------------------------------------------

    def _walk(self, index: int) -> tuple[int, int]:
        """Start and step of account ``index``'s walk through the name space."""
        start = self.hash(_T_START, index) % NAME_SPACE
        step = 1 + self.hash(_T_STEP, index) % (NAME_SPACE - 1)
        return start, step

    def listing(self, account: SimAccount, start: int, stop: int) -> list[str]:
        """Names ``start`` to ``stop`` (exclusive) of what ``account`` follows, any kind."""
        stop = min(stop, account.following_count)
        if start >= stop:
            return []
        first, step = self._walk(account.index)
        name_of = self.name_of
        return [name_of((first + k * step) % NAME_SPACE) for k in range(max(0, start), stop)]

    def follows_index(self, account: SimAccount) -> Callable[[int], bool]:
        """A test of whether ``account`` lists name-space index ``n``; cheap per call."""
        first, step = self._walk(account.index)
        inverse = pow(step, -1, NAME_SPACE)
        count = account.following_count

        def lists(n: int) -> bool:
            return (n - first) * inverse % NAME_SPACE < count

        return lists

    def follows(self, account: SimAccount, name: str) -> bool:
        """Whether ``name`` is in ``account``'s listing (what its pages show)."""
        n = self.index_of(name)
        if n is None or self.name_of(n).casefold() != name.casefold():
            return False
        return self.follows_index(account)(n)

    def friends(self, screen_name: str) -> list[str]:
        """The truth a collector should save for this name, in listing order.

        The full list for an ``ok`` account; empty for every other kind (the site shows
        no list, or shows one a collector must not trust) and for unknown names.
        """
        account = self.account(screen_name)
        if account is None or account.kind is not AccountKind.OK:
            return []
        return self.listing(account, 0, account.following_count)

    def expected(self, screen_name: str) -> dict[str, Any]:
        """What a correct collector records for ``screen_name``, as JSON-ready values.

        Keys: ``screen_name``, ``user_id`` (None when not an account to collect),
        ``status`` (a ``friendscrape.models.Status`` value: ``ok``, ``protected``,
        ``not_found``, ``suspended``, ``invalid``, or ``failed`` for every hostile
        account), ``friends`` (the full list for ``ok``, else empty; a collector that
        stops at ``max_friends`` must save a prefix and mark it truncated),
        ``following_count`` (the count the site shows on the first page, None when it
        shows none), ``kind`` and ``reason`` (why a hostile account must fail).
        A name that is not an account to collect is ``invalid`` when no screen name can
        look like it, else ``not_found``.
        """
        account = self.account(screen_name)
        if account is None:
            status = Status.NOT_FOUND if is_valid_screen_name(screen_name) else Status.INVALID
            return {
                "screen_name": screen_name,
                "user_id": None,
                "status": status.value,
                "friends": [],
                "following_count": None,
                "kind": None,
                "reason": None,
            }
        status = _KIND_STATUS.get(account.kind, Status.FAILED)
        shown = account.kind is AccountKind.OK or account.hostile
        return {
            "screen_name": account.screen_name,
            "user_id": account.user_id,
            "status": status.value,
            "friends": self.friends(account.screen_name),
            "following_count": account.following_count if shown else None,
            "kind": account.kind.value,
            "reason": HOSTILE_ACCOUNTS[account.screen_name][2] if account.hostile else None,
        }

    def following_hint(self, account: SimAccount) -> int | None:
        """The following count given in the import file: empty for about 15 % of users."""
        if _unit(self.hash(_T_HINT, account.index)) < _NO_HINT_SHARE:
            return None
        return account.following_count
