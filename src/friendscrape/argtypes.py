"""Argument types of the ``friendscrape`` command's global options (store URLs), and the
general types of ``arguments`` (bounded numbers, shares, partitions, grids, number
settings, files, the one-line parser), handed on to the face.

Each option names one of these as its ``type``, so a hostile value (``nan``, ``inf``,
``-1``, ``1e308``, a twenty-digit number, a control character) is refused by the parser
before any work starts, and an option added later gets the same checks by reusing them.
This module is part of the command line's face: only ``cli`` and ``clihelp`` import it;
each command's own options (``add_options``) take their types from ``arguments``.
"""

from __future__ import annotations

import argparse

from friendscrape import checks
from friendscrape.arguments import (
    OneLineParser,
    grid,
    input_file,
    number,
    output_file,
    partition,
    setting,
    share,
    whole,
)
from friendscrape.checks import has_control

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
