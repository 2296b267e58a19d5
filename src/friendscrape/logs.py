"""structlog configuration: JSON lines for machines, console lines for people, always on
stderr (stdout carries only a command's results: exports, tables, JSON documents)."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (keys too) turned into its name."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan"
    if isinstance(value, dict):
        return {_finite(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def strict_dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that always writes valid JSON: NaN and infinite floats, which the
    standard library writes as the non-JSON ``NaN`` and ``Infinity``, become strings
    ("nan", "inf", "-inf"), so one odd value cannot break a log reader's parsing."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        # Rare (a number from a hostile upstream): only then walk the event.
        return json.dumps(_finite(obj), allow_nan=False, **kwargs)


class Redactor:
    """Replace every known secret value anywhere in an event with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, _logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        if not self._secrets:
            return event
        return {key: self._scrub(value) for key, value in event.items()}

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, "[redacted]")
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value


def quiet_closed(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null once its reader has gone (a closed
    pipe), so the lines still to come, and the interpreter's last flush, vanish quietly
    instead of raising BrokenPipeError again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a StringIO, the live bar)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class PipeSafeStream:
    """The stream logs are written to, surviving a reader that went away.

    On the first BrokenPipeError (``friendscrape run 2>&1 | head -1``) the stream is
    pointed at /dev/null and ``on_closed`` is called once: the run stops as on SIGTERM,
    instead of every later log line raising inside the collector."""

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._on_closed = on_closed
        self.closed_pipe = False

    def write(self, text: str) -> int:
        """Write ``text``; nothing once the reader has gone."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._broken()
            return len(text)

    def flush(self) -> None:
        """Flush; nothing once the reader has gone."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._broken()

    def isatty(self) -> bool:
        """Whether the stream is a terminal."""
        return self._stream.isatty()

    def _broken(self) -> None:
        if self.closed_pipe:
            return
        self.closed_pipe = True
        quiet_closed(self._stream)
        if self._on_closed is not None:
            self._on_closed()


def configure(
    *,
    fmt: str = "json",
    level: str = "info",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
    on_closed: Callable[[], None] | None = None,
) -> None:
    """Configure structlog once per process; calling again replaces the configuration.

    Logs go to ``stream``, by default stderr: platforms (Heroku, Papertrail) read both
    streams, and a pipe of the results (``friendscrape export | head``) stays clean.
    ``on_closed`` is called once if the stream's reader goes away (see PipeSafeStream)."""
    raw = stream if stream is not None else sys.stderr
    out = cast("TextIO", PipeSafeStream(raw, on_closed))
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=strict_dumps)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
