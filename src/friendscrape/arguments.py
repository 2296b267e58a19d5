"""Building blocks of every command line of the project (friendscrape's own and the
simulator's): bounded numbers, shares, partitions, concurrency grids, number settings,
ports, hosts and files as argument types, and a parser whose errors are one line.

Each option names one of these as its ``type``, so a hostile value (``nan``, ``inf``,
``-1``, ``1e308``, a twenty-digit number, a control character) is refused by the parser
before any work starts, and an option added later gets the same checks by reusing them.
They import nothing of the project, so the simulator's command line and each command's
own options (``add_options`` under commands/) use them without reaching up into the
command line's face (``argtypes`` hands them on to it).
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, Protocol

# The largest number any option accepts: far beyond any sane count of users, seconds or
# dollars, yet small enough that sums, timedeltas and SQLite integers cannot overflow.
MAX_NUMBER = 10**12


def whole(low: int = 1, high: int = MAX_NUMBER) -> Callable[[str], int]:
    """A whole number in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            msg = f"{text!r} is not a whole number"
            raise argparse.ArgumentTypeError(msg) from None
        if not low <= value <= high:
            msg = f"{text!r} is out of range (a whole number from {low} to {high})"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def number(
    low: float = 0.0, high: float = MAX_NUMBER, *, above_low: bool = False
) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` when ``above_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            msg = f"{text!r} is not a number"
            raise argparse.ArgumentTypeError(msg) from None
        too_low = value <= low if above_low else value < low
        if not math.isfinite(value) or too_low or value > high:
            side = "more than" if above_low else "at least"
            msg = f"{text!r} is out of range (a finite number {side} {low:g}, at most {high:g})"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


class NumberRule(Protocol):
    """What a number setting accepts (``config.number_rule(NAME)`` gives one)."""

    @property
    def whole(self) -> bool:
        """Whether the setting is a whole number."""

    def refusal(self, text: str) -> str | None:
        """Why ``text`` is refused, in the rule's words; None when it is accepted."""


def setting(rule: NumberRule | None) -> Callable[[str], float]:
    """The type of an option that sets a number setting (``config.number_rule(NAME)``):
    refused by the setting's own rule, in the words its environment variable is refused in."""
    if rule is None:
        msg = "not a number setting"
        raise ValueError(msg)

    def parse(text: str) -> float:
        why = rule.refusal(text.strip())
        if why is not None:
            raise argparse.ArgumentTypeError(why)
        return int(text) if rule.whole else float(text)

    return parse


def share(text: str) -> float:
    """A fraction from 0 to 1."""
    return number(0.0, 1.0)(text)


def partition(text: str) -> str:
    """``auto``, ``next`` or a partition number from 1 (kept as text: resolved later)."""
    if text in {"auto", "next"}:
        return text
    try:
        return str(whole()(text))
    except argparse.ArgumentTypeError:
        msg = f"{text!r} is not a partition number (a whole number from 1, auto or next)"
        raise argparse.ArgumentTypeError(msg) from None


def grid(text: str) -> tuple[int, ...]:
    """Comma-separated concurrency values such as ``10,50,200`` (each 1-20000)."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        msg = f"{text!r} is not a list of whole numbers separated by commas"
        raise argparse.ArgumentTypeError(msg)
    return tuple(whole(1, 20000)(part) for part in parts)


def port(text: str) -> int:
    """A TCP port to listen on: 1-65535, or 0 for a free one."""
    return whole(0, 65535)(text)


def host(text: str) -> str:
    """An address to listen on: an IP address or ``localhost`` (no name lookups)."""
    if text != "localhost":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            msg = f"{text!r} is not an IP address or localhost"
            raise argparse.ArgumentTypeError(msg) from None
    return text


def input_file(text: str) -> Path:
    """A file that exists and can be read."""
    path = Path(text)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "no such file"
        msg = f"cannot read {text!r}: {why}"
        raise argparse.ArgumentTypeError(msg)
    return path


def output_file(text: str) -> Path:
    """A file to write: its folder exists and it is not itself a folder (checked before any
    work, so a long export or report does not fail at its last step)."""
    if not text or any(ord(ch) < 32 for ch in text):
        msg = f"{text!r} is not a file name"
        raise argparse.ArgumentTypeError(msg)
    path = Path(text)
    if path.is_dir():
        msg = f"cannot write {text!r}: it is a directory"
        raise argparse.ArgumentTypeError(msg)
    if not path.absolute().parent.is_dir():
        msg = f"cannot write {text!r}: folder {str(path.parent)!r} does not exist"
        raise argparse.ArgumentTypeError(msg)
    return path


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (their examples keep their lines); every
    option with a default of its own shows it, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default: Any = action.default
        unset = default is None or default is False or default == argparse.SUPPRESS
        if action.option_strings and not unset and "default" not in text:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            return f"{text} (default: {shown.replace('%', '%%')})"
        return action.help


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``friendscrape: error: ...`` with a
    hint, like every other error of the tool (argparse would print its usage first), and
    whose help shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print one line on stderr and exit 2, with the closest known word for a mistyped
        command, choice or option (``staus``: did you mean 'status'?)."""
        hint = self.suggestion(message)
        self.exit(2, f"friendscrape: error: {message}{hint} (see {self.prog} --help)\n")

    def suggestion(self, message: str) -> str:
        """``; did you mean X?`` for argparse's error ``message``, or nothing."""
        choice = _INVALID_CHOICE.match(message)
        if choice is not None:
            known = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), known, n=1)
            return f"; did you mean {close[0]!r}?" if close else ""
        if message.startswith(_UNRECOGNIZED):
            options = [name for name in self._option_string_actions if name.startswith("--")]
            for word in message.removeprefix(_UNRECOGNIZED).split():
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.partition("=")[0], options, n=1)
                    if close:
                        return f"; did you mean {close[0]}?"
        return ""


# argparse's own words (Python 3.11-3.13) for a value outside an option's choices, or a
# command that does not exist, and for words it does not know.
_INVALID_CHOICE = re.compile(r"argument .*?: invalid choice: '(.*)' \(choose from (.*)\)$")
_UNRECOGNIZED = "unrecognized arguments: "
