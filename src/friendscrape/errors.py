"""The exception tree of friendscrape.

Every error the tool raises on purpose is a ``FriendscrapeError``; the CLI turns each
into one line on stderr and a non-zero exit code, never a traceback::

    FriendscrapeError
    ├── UsageError                 bad input from the user: arguments, settings, files
    │   └── PlanError              no plan yet, unknown partition, plan refused
    ├── StoreError                 the results store failed
    │   ├── StoreUnavailableError  cannot open or reach the store (bad URL, no server)
    │   └── StoreTransientError    a write or read that may succeed if retried
    ├── FetchError                 an HTTP request for one page failed (carries the URL)
    │   ├── TransientFetchError    connection error, timeout, 5xx, 429: retried
    │   └── PermanentFetchError    redirect off-host, body too large, unexpected status
    ├── ParseError                 a page could not be understood (carries the URL)
    │   ├── LoginWallError         the upstream answered with a login page, not a list
    │   └── NotPlatformAnswerError a 200 that is not the platform's answer at all
    └── RunAbortedError               the run must stop with a non-zero exit
        ├── WriterFailedError      the writer could not save within its retry budget
        ├── StalledError           the watchdog saw no successful write for too long
        ├── CredentialsRejectedError  the platform refused our credentials (401/403)
        ├── PauseTooLongError      the upstream asked for a pause over the maximum (exit 4)
        ├── UpstreamDownError      the circuit breaker: every recent user failed alike (exit 5)
        └── PartitionHeldError     another live run holds the partition's lease (exit 6)

Users a run did not finish when it aborts stay pending, so a restart resumes them.

Errors that end one user's collection (fetch and parse errors) become that user's
status with the reason kept; only store and run errors end the process.
"""

from __future__ import annotations


class FriendscrapeError(Exception):
    """Base of every error friendscrape raises on purpose."""

    exit_code = 1


class UsageError(FriendscrapeError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class PlanError(UsageError):
    """The partition plan is missing, or the partition asked for is not in it."""


class StoreError(FriendscrapeError):
    """The store failed."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or reached."""

    exit_code = 2


class StoreTransientError(StoreError):
    """A store call that may succeed when retried (lock, timeout, 5xx)."""


class StoreConflictError(StoreTransientError):
    """The store aborted a statement because another changed the same table at once
    (BigQuery: "Could not serialize access to table ... due to concurrent update"). It
    changed nothing, so even an append is safe to make again, after a jittered wait."""


class FetchError(FriendscrapeError):
    """An HTTP request failed; ``url`` names the request."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class TransientFetchError(FetchError):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(
        self, message: str, *, url: str, kind: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.kind = kind
        self.retry_after = retry_after


class PermanentFetchError(FetchError):
    """A failure that retrying will not fix."""


class ParseError(FriendscrapeError):
    """A page could not be understood as the page it should be."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class LoginWallError(ParseError):
    """The upstream sent a login page instead of the list (a redirect to its login)."""


class NotPlatformAnswerError(ParseError):
    """The answer is not the platform's at all: an empty body, an HTML page where JSON was
    expected, JSON without the platform's top-level shape, a page with none of the mobile
    site's markers (a captive portal, a parked domain, another service's API).

    It says nothing about the user, so the circuit breaker counts it as upstream-wide; a
    page that is the platform's but wrong in its items stays a plain ``ParseError``.
    """


class RunAbortedError(FriendscrapeError):
    """The run cannot continue safely; the process must exit non-zero."""

    exit_code = 3


class WriterFailedError(RunAbortedError):
    """The writer could not save a chunk within its retry budget."""


class StalledError(RunAbortedError):
    """No successful write for longer than the stall timeout while results waited."""


class CredentialsRejectedError(RunAbortedError):
    """The platform refused the credentials (HTTP 401/403): no user can be collected.

    Ends the run instead of saving every user as failed; the message names the setting
    to check and never contains a credential.
    """

    exit_code = 2

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class PauseTooLongError(RunAbortedError):
    """The upstream asked for a pause longer than ``max_pause``: end the run now.

    The users not yet finished stay pending, so the platform's restart resumes later.
    """

    exit_code = 4

    def __init__(self, message: str, *, host: str, pause: float) -> None:
        super().__init__(message)
        self.host = host
        self.pause = pause
        # Set by the run command when the store could say: shown after the message.
        self.users_left: int | None = None


class UpstreamDownError(RunAbortedError):
    """The circuit breaker: the recent users all failed the same way (cannot connect,
    DNS, TLS, a generic 4xx, a login wall, a 200 that is not the platform's answer), so
    the upstream is down or the URL is wrong.

    Those users stay pending instead of being saved as failed.
    """

    exit_code = 5


class PartitionHeldError(RunAbortedError):
    """Another run holds the partition's lease and its heartbeat is still fresh."""

    exit_code = 6


class WaveRaceError(UsageError):
    """Another ``waves new`` opened the wave this one was opening, at the same time."""

    def __init__(self, wave: int) -> None:
        super().__init__(
            f"another 'friendscrape waves new' opened wave {wave} at the same time: it is "
            f"the current wave (run 'waves new' again only to open wave {wave + 1})"
        )
        self.wave = wave
