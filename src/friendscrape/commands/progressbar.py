"""The live progress bar of an interactive run: done/total, rate and ETA on stderr's last line.

Only a run whose stderr is a terminal gets one; any other run prints only its JSON log
lines. Log lines are written through the same ``LiveLine`` so each one lands above the
bar, which is then drawn again: people see readable logs and one bar that stays put.

    line = LiveLine(sys.stderr)
    logs.configure(fmt="console", stream=line.as_stream())
    async with line.around(runner):      # runner: PartitionRun
        await runner.run()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol, TextIO, cast

from friendscrape.commands.status import human_duration

_CLEAR = "\r\x1b[K"  # carriage return, then erase to the end of the line
DEFAULT_INTERVAL = 0.5


class HasProgress(Protocol):
    """What the bar reads: PartitionRun's ``progress_fields``."""

    def progress_fields(self) -> dict[str, object]:
        """The figures of a progress event."""


def wants_bar(stream: TextIO, log_format: str) -> bool:
    """A bar only for people: the stream is a terminal and logs are not forced to JSON."""
    return log_format != "json" and stream.isatty()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def render(fields: Mapping[str, object], *, width: int = 24) -> str:
    """One bar line from ``progress_fields()``: bar, done/total, percent, rate, ETA."""
    done = _int(fields.get("done")) or 0
    remaining = _int(fields.get("remaining"))
    per_min = _float(fields.get("users_per_min")) or 0.0
    if remaining is None:
        return f"[{' ' * width}] starting..."
    total = done + remaining
    share = done / total if total else 1.0
    filled = int(share * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = human_duration(remaining * 60 / per_min) if per_min > 0 else "-"
    if remaining == 0:
        eta = "done"
    parts = [
        f"[{bar}] {done:,}/{total:,} {share * 100:5.1f}%",
        f"{per_min:,.1f} users/min",
        f"ETA {eta}",
    ]
    in_flight = _int(fields.get("in_flight"))
    if in_flight:
        parts.append(f"{in_flight} in flight")
    paused = fields.get("paused")
    if isinstance(paused, Mapping) and paused:
        parts.append(f"paused by {len(paused)} host(s)")
    return "  ".join(parts)


class LiveLine:
    """A terminal stream whose last line is a status line that other writes go above."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._line = ""
        self._partial = False  # the last write did not end a line: do not draw over it

    # -- the TextIO surface structlog's PrintLogger uses ---------------------------------

    def write(self, text: str) -> int:
        """Write ``text`` above the bar and draw the bar again below it."""
        out = self._stream
        if self._line and not self._partial:
            out.write(_CLEAR)
        out.write(text)
        self._partial = not text.endswith("\n")
        if self._line and not self._partial:
            out.write(self._line)
        out.flush()
        return len(text)

    def flush(self) -> None:
        """Flush the terminal."""
        self._stream.flush()

    def isatty(self) -> bool:
        """As the terminal says (console logs use colours only on one)."""
        return self._stream.isatty()

    def as_stream(self) -> TextIO:
        """This line typed as the text stream ``logs.configure`` takes (it uses only
        ``write``, ``flush`` and ``isatty``)."""
        return cast("TextIO", self)

    # -- the bar -------------------------------------------------------------------------

    def show(self, line: str) -> None:
        """Replace the status line."""
        self._line = line
        if not self._partial:
            self._stream.write(_CLEAR + line)
            self._stream.flush()

    def finish(self) -> None:
        """Leave the last status line on screen and end it, so later output starts below."""
        if self._line and not self._partial:
            self._stream.write("\n")
            self._stream.flush()
        self._line = ""

    def around(self, runner: HasProgress) -> contextlib.AbstractAsyncContextManager[None]:
        """Draw ``runner``'s progress while the block runs (the hook of ``commands.run.run``)."""
        return live_progress(self, runner.progress_fields)


async def drive(
    line: LiveLine, fields: Callable[[], Mapping[str, object]], *, interval: float
) -> None:
    """Redraw the bar from ``fields()`` every ``interval`` seconds until cancelled."""
    while True:
        line.show(render(fields()))
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def live_progress(
    line: LiveLine,
    fields: Callable[[], Mapping[str, object]],
    *,
    interval: float = DEFAULT_INTERVAL,
) -> AsyncIterator[None]:
    """Keep the bar current while the block runs; draw the final figures when it ends."""
    task = asyncio.create_task(drive(line, fields, interval=interval), name="progressbar")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        line.show(render(fields()))
        line.finish()
