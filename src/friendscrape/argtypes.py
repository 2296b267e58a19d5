"""Argument types of the ``friendscrape`` command: shares, partitions, concurrency grids
and store URLs, and the general types of ``arguments`` (bounded numbers, ports, hosts,
files, the one-line parser), handed on so every option of the command names its type here.

Each option names one of these as its ``type``, so a hostile value (``nan``, ``inf``,
``-1``, ``1e308``, a twenty-digit number, a control character) is refused by the parser
before any work starts, and an option added later gets the same checks by reusing them.
This module is part of the command line's face: only ``cli`` and ``clihelp`` import it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from friendscrape import checks
from friendscrape.arguments import OneLineParser, input_file, number, output_file, whole
from friendscrape.checks import has_control

if TYPE_CHECKING:
    from friendscrape.config import NumberRule

__all__ = [
    "OneLineParser",
    "grid",
    "input_file",
    "number",
    "output_file",
    "partition",
    "setting",
    "share",
    "store_url",
    "whole",
]


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
    """``auto`` or a partition number from 1 (kept as text: ``auto`` is resolved later)."""
    if text == "auto":
        return text
    try:
        return str(whole()(text))
    except argparse.ArgumentTypeError:
        msg = f"{text!r} is not a partition number (a whole number from 1, or auto)"
        raise argparse.ArgumentTypeError(msg) from None


def grid(text: str) -> tuple[int, ...]:
    """Comma-separated concurrency values such as ``10,50,200`` (each 1-20000)."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        msg = f"{text!r} is not a list of whole numbers separated by commas"
        raise argparse.ArgumentTypeError(msg)
    return tuple(whole(1, 20000)(part) for part in parts)


def store_url(text: str) -> str:
    """``sqlite:///PATH`` in form (the store checks the rest when it opens) or a valid
    ``bigquery://PROJECT/DATASET``; refused here, with what is wrong, so no command starts
    work on a store it cannot use."""
    use = "use sqlite:///PATH or bigquery://PROJECT/DATASET"
    try:
        checks.no_credentials(text, use)  # checked first: the messages below repeat text
    except ValueError as exc:
        msg = f"store URL {exc}"
        raise argparse.ArgumentTypeError(msg) from None
    scheme, sep, rest = text.partition("://")
    if not sep and text.partition(":")[0] not in ("sqlite", "bigquery"):
        msg = f"store URL {text!r} has no scheme: {use}"
    elif scheme not in ("sqlite", "bigquery") and sep:
        msg = f"unknown store scheme {scheme!r}: {use}"
    elif not sep or not rest.strip("/") or has_control(text):
        msg = f"malformed store URL {text!r}: {use}"
    elif scheme == "bigquery":
        try:
            checks.bigquery_store(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    else:
        return text
    raise argparse.ArgumentTypeError(msg)
