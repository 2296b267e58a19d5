"""The live progress bar of an interactive run, drawn by tqdm on stderr's last line.

Only a run whose stderr is a terminal gets one; any other run (Heroku, a pipe, a file)
prints only its JSON log lines and never an escape sequence. Log lines are written
through the same ``LiveLine`` so each one lands above the bar, which is then drawn
again: people see readable logs and one bar that stays put.

Each redraw is fitted to the terminal's width as it is then: tqdm sizes the bar and
trims by display width, and the figures beside it are dropped or shortened in order of
importance (elapsed time and a rate-limit pause are kept longest, so a pause never looks
like a hang). tqdm is imported only when a bar is drawn.

    line = LiveLine(sys.stderr)
    logs.configure(fmt="console", stream=line.as_stream())
    async with line.around(runner):      # runner: PartitionRun
        await runner.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol, TextIO, cast

from friendscrape.commands.progress.durations import human_duration

_CLEAR = "\r\x1b[K"  # carriage return, then erase to the end of the line
DEFAULT_INTERVAL = 0.5
FALLBACK_WIDTH = 80  # when the terminal does not say how wide it is
# The bar takes a sixth of the width (an eighth below 80 columns; 5 to 30 columns)
# whatever the figures beside it, so its right end stays put from one redraw to the next.
_MIN_BAR = 5
_MAX_BAR = 30
_NARROW = 80  # columns below which counts and percent are shortened
_LABEL_CLOCK = 100  # columns from which the clock is labelled "elapsed"
_HOST = 20  # a paused host's name is cut to this many characters where room is short
_COMPACT_FROM = 100_000  # counts from here are shown as 1.23M on a narrow terminal
_SEP = "  "

Clock = Callable[[], float]


class HasProgress(Protocol):
    """What the bar reads: PartitionRun's ``progress_fields``."""

    def progress_fields(self) -> dict[str, object]:
        """The figures of a progress event."""


def wants_bar(stream: TextIO, log_format: str) -> bool:
    """A bar only for people: the stream is a terminal and logs are not forced to JSON."""
    return log_format != "json" and stream.isatty()


def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal ``stream`` writes to, asked at each redraw (it may be
    resized); ``FALLBACK_WIDTH`` when it cannot say."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return FALLBACK_WIDTH
    return columns if columns > 0 else FALLBACK_WIDTH


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# Each figure beside the bar comes in forms, each with a rank: the lower, the sooner it
# is given room. Elapsed time first, then a pause (what tells a wait from a hang), the
# ETA and the rate; longer wordings of each only once every short one is in.
Form = tuple[int, str]


def _paused(paused: object) -> tuple[Form, ...]:
    """The longest rate-limit pause now: the answer to "is it hung?"."""
    if not isinstance(paused, Mapping):
        return ()
    waits = {str(host): w for host, s in paused.items() if (w := _float(s)) is not None}
    if not waits:
        return ()
    host = max(waits, key=lambda h: waits[h])
    left = human_duration(max(waits[host], 0.1))
    more = f" (+{len(waits) - 1} more)" if len(waits) > 1 else ""
    cut = host if len(host) <= _HOST else host[: _HOST - 1] + "…"
    return (
        (10, f"paused {left}"),
        (35, f"paused {cut} {left}"),
        (70, f"paused: {host} {left} left{more}"),
    )


def _learned(rates: object) -> tuple[Form, ...]:
    """Requests/s the limiter learned from 429s: the lowest over hosts and tokens, as
    ``status`` shows it."""
    if not isinstance(rates, Mapping):
        return ()
    values = [r for r in map(_float, rates.values()) if r is not None]
    if not values:
        return ()
    pace = f"{min(values):,.1f}"
    several = f" (lowest of {len(values)} hosts/tokens)" if len(values) > 1 else ""
    return (
        (40, f"learned {pace}/s"),
        (60, f"learned {pace} req/s"),
        (80, f"learned {pace} req/s{several}"),
    )


def _parts(fields: Mapping[str, object], clock: str, *, width: int) -> list[tuple[Form, ...]]:
    """The figures beside the bar, in the order they are shown."""
    remaining = _int(fields.get("remaining"))
    per_min = _float(fields.get("users_per_min")) or 0.0
    parts: list[tuple[Form, ...]] = [((0, f"elapsed {clock}" if width >= _LABEL_CLOCK else clock),)]
    if remaining is not None:
        eta = human_duration(remaining * 60 / per_min) if per_min > 0 else "-"
        parts.append(((20, f"ETA {'done' if remaining == 0 else eta}"),))
        parts.append(((30, f"{per_min:,.0f}/min"), (60, f"{per_min:,.1f} users/min")))
    parts.append(_learned(fields.get("learned_rate")))
    in_flight = _int(fields.get("in_flight"))
    if in_flight:
        parts.append(((50, f"{in_flight} in flight"),))
    parts.append(_paused(fields.get("paused")))
    return [p for p in parts if p]


def _fit(parts: list[tuple[Form, ...]], budget: int) -> str:
    """As many figures as fit in ``budget`` columns: forms are tried by rank, and one
    replaces its figure's shorter form when the line still fits."""
    from tqdm.utils import disp_len  # noqa: PLC0415 - only a run on a terminal draws

    chosen: dict[int, str] = {}

    def cost(picks: Mapping[int, str]) -> int:
        return sum(disp_len(p) for p in picks.values()) + len(_SEP) * max(len(picks) - 1, 0)

    tries = sorted((rank, i, text) for i, forms in enumerate(parts) for rank, text in forms)
    for _rank, i, text in tries:
        if i in chosen and disp_len(text) <= disp_len(chosen[i]):
            continue
        if cost({**chosen, i: text}) <= budget:
            chosen[i] = text
    return _SEP.join(chosen[i] for i in sorted(chosen))


def _literal(text: str) -> str:
    """``text`` inside a tqdm bar_format (a str.format template)."""
    return text.replace("{", "{{").replace("}", "}}")


def render(
    fields: Mapping[str, object], *, elapsed: float, width: int, ascii_only: bool = False
) -> str:
    """One bar line of at most ``width`` columns from ``progress_fields()``: done/total,
    percent, bar, then elapsed time, ETA, rate, learned rate, in flight and pauses as
    room allows."""
    from tqdm import tqdm  # noqa: PLC0415 - only a run on a terminal draws
    from tqdm.utils import disp_len  # noqa: PLC0415

    done = _int(fields.get("done")) or 0
    remaining = _int(fields.get("remaining"))
    parts = _parts(fields, tqdm.format_interval(elapsed), width=width)
    if remaining is None:
        head = "starting..."
        line = head + _SEP + _fit(parts, width - len(head) - len(_SEP))
        return tqdm.format_meter(0, 1, elapsed, ncols=width, bar_format=_literal(line))
    total = done + remaining
    share = done / total if total else 1.0
    if width >= _NARROW:
        head = f"{done:,}/{total:,} {share * 100:5.1f}%"
    elif total < _COMPACT_FROM:
        head = f"{done:,}/{total:,} {share * 100:3.0f}%"
    else:  # 3.6M users on a narrow terminal: 1.23M/3.60M
        head = f"{tqdm.format_sizeof(done)}/{tqdm.format_sizeof(total)} {share * 100:3.0f}%"
    bar = min(max(width // (8 if width < _NARROW else 6), _MIN_BAR), _MAX_BAR)
    tail = _fit(parts, width - len(head) - 3 - bar)  # 3: "|", "| "
    return tqdm.format_meter(
        done if total else 1,
        total or 1,
        elapsed,
        ncols=min(len(head) + 3 + bar + disp_len(tail), width),
        ascii=ascii_only,
        bar_format=f"{_literal(head)}|{{bar}}| {_literal(tail)}",
    )


class LiveLine:
    """A terminal stream whose last line is a status line that other writes go above.

    ``width`` fixes the columns (tests); by default the terminal is asked at each redraw.
    """

    def __init__(self, stream: TextIO, *, width: int | None = None) -> None:
        self._stream = stream
        self._width = width
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

    @property
    def width(self) -> int:
        """Columns a status line may take now."""
        return self._width or terminal_width(self._stream)

    @property
    def ascii_only(self) -> bool:
        """Draw the bar with ``#`` where the terminal may not take Unicode blocks."""
        encoding = getattr(self._stream, "encoding", None) or ""
        return "utf" not in encoding.lower()

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


def _draw(
    line: LiveLine, fields: Callable[[], Mapping[str, object]], started: float, clock: Clock
) -> None:
    line.show(
        render(fields(), elapsed=clock() - started, width=line.width, ascii_only=line.ascii_only)
    )


async def drive(
    line: LiveLine,
    fields: Callable[[], Mapping[str, object]],
    *,
    interval: float,
    started: float,
    clock: Clock = time.monotonic,
) -> None:
    """Redraw the bar from ``fields()`` every ``interval`` seconds until cancelled."""
    while True:
        _draw(line, fields, started, clock)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def live_progress(
    line: LiveLine,
    fields: Callable[[], Mapping[str, object]],
    *,
    interval: float = DEFAULT_INTERVAL,
    clock: Clock = time.monotonic,
) -> AsyncIterator[None]:
    """Keep the bar current while the block runs; draw the final figures when it ends.
    Elapsed time counts from entering the block, read from ``clock``."""
    started = clock()
    task = asyncio.create_task(
        drive(line, fields, interval=interval, started=started, clock=clock), name="progressbar"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _draw(line, fields, started, clock)
        line.finish()
