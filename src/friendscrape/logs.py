"""structlog configuration: JSON lines for machines, console lines for people, always on
stderr (stdout carries only a command's results: exports, tables, JSON documents).

A console line is short and one line at info: the time, the level, the event, its
figures (progress as a sentence); what identifies a run (run_id, pid) and the
step-by-step events (``DETAIL_EVENTS``) show only at debug, and an info line is cut to
the terminal's width. JSON lines carry every event and field, whatever the format."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
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


# Events a console shows only at debug: one per step of something that moves often.
DETAIL_EVENTS = frozenset({"limiter.concurrency"})
# Fields that identify rather than inform: on the console only at debug.
_DETAIL_FIELDS = frozenset({"run_id", "pid", "ttl", "timestamp", "level", "event"})
_COLORS = {"warning": "\x1b[33m", "error": "\x1b[31m", "critical": "\x1b[31m"}


def _shown(value: Any) -> str:
    """A field's value as a person reads it: ``ok:290 invalid:2`` for a dict."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{_shown(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ",".join(_shown(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return repr(text) if not text or " " in text else text


def progress_sentence(event: EventDict) -> str:
    """The progress event in words: what is done, what is left, how fast."""
    parts = [f"{event.get('done', 0):,} done"]
    if event.get("remaining") is not None:
        parts.append(f"{event['remaining']:,} left")
    rate = float(event.get("users_per_min") or 0)
    parts.append(f"{rate:,.0f} users/min" if rate >= 10 else f"{rate:g} users/min")
    parts.append(f"{event.get('in_flight', 0)} in flight")
    errors = sum(event.get("errors", {}).values())
    if errors:
        parts.append(f"{errors:,} errors")
    if event.get("paused"):
        parts.append(f"paused: {_shown(event['paused'])}")
    return "progress: " + ", ".join(parts)


class ConsoleLine:
    """Renders an event as one short line for people (see the module's docstring).
    ``verbose`` (debug): every field, every event, nothing cut; ``width``: the columns
    (by default the terminal's, asked at each line); ``colors``: the level in color."""

    def __init__(
        self, *, verbose: bool, colors: bool = False, width: Callable[[], int] | None = None
    ) -> None:
        self._verbose = verbose
        self._colors = colors
        self._width = width or (lambda: shutil.get_terminal_size((80, 24)).columns)

    def __call__(self, _logger: WrappedLogger, _name: str, event: EventDict) -> str:
        name = str(event.get("event", ""))
        level = str(event.get("level", "info"))
        if name in DETAIL_EVENTS and not self._verbose:
            raise structlog.DropEvent
        clock = str(event.get("timestamp", ""))[11:19]
        if name == "progress" and not self._verbose:
            text = progress_sentence(event)
        else:
            fields = [
                f"{key}={_shown(value)}"
                for key, value in event.items()
                if self._verbose or key not in _DETAIL_FIELDS
                if key not in {"timestamp", "level", "event"}
            ]
            text = " ".join([name, *fields])
        line = f"{clock} {level:<7} {text}"
        if level in {"debug", "info"} and not self._verbose:
            width = max(self._width() - 1, 20)  # the last column would wrap some terminals
            if len(line) > width:
                line = line[: width - 1] + "\u2026"
        if self._colors and level in _COLORS:
            line = f"{_COLORS[level]}{line}\x1b[0m"
        return line


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
        renderer = ConsoleLine(verbose=level == "debug", colors=out.isatty())
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
