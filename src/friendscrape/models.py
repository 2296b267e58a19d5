"""Records passed between the roles: users, partitions, pages and friend lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Status(StrEnum):
    """How one user's collection ended; every user ends with exactly one."""

    OK = "ok"
    PROTECTED = "protected"
    NOT_FOUND = "not_found"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    INVALID = "invalid"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class User:
    """A user whose friends are to be collected."""

    user_id: str
    screen_name: str
    following_count: int | None = None
    resolved_id: str | None = None
    """The platform's account id looked up for a handle (None: not looked up, or the
    user is listed by id already); kept by the store so no handle is looked up twice."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a handle look-up said of one user: its account id, or why there is none."""

    account_id: str | None
    status: Status = Status.OK
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of the stored plan: a contiguous range of users in id order."""

    number: int
    user_count: int
    min_user_id: str
    max_user_id: str


@dataclass(frozen=True, slots=True)
class PlanCut:
    """How the stored plan was cut, as its store records it: by ``users`` or by expected
    ``pages``, and for pages the max_friends and page size each user was weighed with
    (a worker reading partitions' pages with another max_friends judges its pace in other
    units than the plan's cuts)."""

    balance: str
    max_friends: int | None = None
    page_size: int | None = None

    @classmethod
    def of(cls, page_size: int | None, max_friends: int | None) -> PlanCut:
        """The cut of a plan made with ``page_size`` (None: by users) and ``max_friends``."""
        if page_size is None:
            return cls("users")
        return cls("pages", max_friends, page_size)

    def facts(self) -> dict[str, str]:
        """The job facts recording it (``plan_*`` keys; a plan by users names no cap)."""
        found = {"plan_balance": self.balance}
        if self.max_friends is not None:
            found["plan_max_friends"] = str(self.max_friends)
        if self.page_size is not None:
            found["plan_page_size"] = str(self.page_size)
        return found

    @classmethod
    def from_facts(cls, facts: dict[str, str]) -> PlanCut | None:
        """The cut the job facts record; None when they record none (an older store)."""
        balance = facts.get("plan_balance")
        if balance is None:
            return None
        cap, size = facts.get("plan_max_friends"), facts.get("plan_page_size")
        if not all(v is None or v.isdigit() for v in (cap, size)):
            return None  # written by another program: read as not recorded, not a crash
        return cls(balance, int(cap) if cap else None, int(size) if size else None)

    def describe(self) -> str:
        """``balanced by pages (lists capped at 2000 names, 50 a page)``, or by users."""
        if self.balance != "pages":
            return f"balanced by {self.balance}"
        cap = (
            "lists uncapped"
            if self.max_friends is None
            else f"lists capped at {self.max_friends} names"
        )
        return f"balanced by pages ({cap}, {self.page_size} a page)"


PLAN_FACTS = ("plan_balance", "plan_max_friends", "plan_page_size")
"""The job facts a plan records (``PlanCut.facts``); a new plan replaces all three."""


@dataclass(frozen=True, slots=True)
class UserPage:
    """A page of users still to collect; ``cursor`` resumes after it (None: no more)."""

    users: tuple[User, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """One parsed page of a following list.

    ``status`` is OK for a list page; otherwise the page tells the account's state
    (protected, not found, suspended...) and ``detail`` says what the page said.
    ``ids`` is empty when the platform gives no ids, else aligned with ``names``.
    ``joined``: the names and the ids each joined by line feeds, none of which holds
    one, when the parser made that text to check them in bulk (None otherwise).
    """

    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    next_cursor: str | None = None
    following_count: int | None = None
    status: Status = Status.OK
    detail: str | None = None
    joined: tuple[str, str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FriendList:
    """The result for one user: one row of ``user_friends``."""

    user_id: str
    screen_name: str
    status: Status
    source: str
    partition: int
    start_at: datetime
    end_at: datetime
    friend_names: tuple[str, ...] = ()
    friend_ids: tuple[str, ...] = ()
    following_count: int | None = None
    truncated: bool = False
    error: str | None = None
    attempts: int = 1
    pages: int = field(default=0, compare=False)
    # friend_names and friend_ids each joined by line feeds, none of which holds one, as
    # a list of one page whole came from the parser (``Page.joined``, whose checks made
    # sure of that): the store keeps lists in that form, and
    # joining 1,000 names and ids again cost some 20 microseconds a list. None: not known.
    joined: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def friend_count(self) -> int:
        """Names collected (the original table's meaning)."""
        return len(self.friend_names)

    def as_json(self) -> dict[str, object]:
        """Every column of the row as JSON values: lists for the friends, UTC ISO times."""
        return {
            "user_id": self.user_id,
            "screen_name": self.screen_name,
            "friend_count": self.friend_count,
            "friend_names": list(self.friend_names),
            "friend_ids": list(self.friend_ids),
            "following_count": self.following_count,
            "truncated": self.truncated,
            "status": self.status.value,
            "error": self.error,
            "source": self.source,
            "partition": self.partition,
            "attempts": self.attempts,
            "start_at": utc(self.start_at).isoformat(),
            "end_at": utc(self.end_at).isoformat(),
        }


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; records carry UTC times, and a naive one is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
