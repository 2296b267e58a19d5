"""The one retry entry point: what to retry on, how many attempts, how long, one wait curve.

Modelled on stamina's ``retry(on=, attempts=, timeout=)``: a retry always names the
errors it retries (no default), caps both attempts and total time, waits on one curve
(exponential from ``base_wait`` up to ``max_wait``, with jitter, so many clients that
failed together do not retry together), and logs each retry as a structured event
through a hook. Callers own the policy values (``RetryPolicy``, built from settings at
the edge); each kind of call is retried in one layer only.

    async def save() -> None: ...
    await retry_call(save, on=StoreTransientError, policy=policy, event="writer.retry")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

T = TypeVar("T")

log = structlog.get_logger("friendscrape.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: at most ``attempts`` calls within ``deadline`` seconds, waiting
    ``base_wait`` seconds at first, doubling up to ``max_wait``, plus up to ``base_wait``
    of jitter."""

    attempts: int
    deadline: float
    base_wait: float
    max_wait: float

    def wait(self) -> Callable[[RetryCallState], float]:
        """The one wait curve."""
        return wait_exponential_jitter(
            multiplier=self.base_wait, max=self.max_wait, jitter=self.base_wait
        )


OnRetry = Callable[[BaseException, int, float], None]
"""Called before each wait with the error, the attempt that failed, and the wait."""


async def retry_call(
    call: Callable[[], Awaitable[T]],
    *,
    on: type[BaseException] | tuple[type[BaseException], ...],
    policy: RetryPolicy,
    event: str,
    first_failure: BaseException | None = None,
    wait_hint: Callable[[BaseException], float | None] | None = None,
    on_retry: OnRetry | None = None,
    error_fields: Callable[[BaseException], Mapping[str, object]] | None = None,
    level: str = "warning",
    **fields: object,
) -> T:
    """``await call()`` until it returns, retrying only ``on`` errors within ``policy``;
    the last error is raised as it was once the budget is spent.

    ``first_failure``: the caller already made attempt 1 outside (a fast path that skips
    this machinery when the first try succeeds, as most pages do); it counts as attempt 1.
    ``wait_hint``: the server's own wait for an error (Retry-After), used when longer
    than the curve's, within the deadline. Each retry logs ``event`` at ``level`` with
    ``fields`` (and ``error_fields`` of the error, e.g. its kind) and calls ``on_retry``.
    """
    curve = policy.wait()

    def wait(state: RetryCallState) -> float:
        ours = curve(state)
        exc = state.outcome.exception() if state.outcome else None
        asked = wait_hint(exc) if wait_hint is not None and exc is not None else None
        if asked is not None:
            return min(max(asked, ours), policy.deadline)
        return ours

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:  # pragma: no cover - tenacity only sleeps after a failure
            return
        log.log(
            # The standard library's own table of level names, so none is copied here.
            logging.getLevelNamesMapping()[level.upper()],
            event,
            attempt=state.attempt_number,
            wait=round(state.upcoming_sleep, 3),
            error=str(exc),
            cause=type(exc).__name__,
            **fields,
            **(error_fields(exc) if error_fields is not None else {}),
        )
        if on_retry is not None:
            on_retry(exc, state.attempt_number, state.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(on),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            if first_failure is not None and attempt.retry_state.attempt_number == 1:
                # Replaying the caller's own first failure keeps the count, the waits and
                # the log events exactly as if this loop had made that attempt.
                raise first_failure
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises
