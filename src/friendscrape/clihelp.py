"""Help text of the command line: each option's default, choices and environment name
(read from Settings, never copied by hand), and the top-level list of a job's commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from friendscrape.config import Settings

# What an unset setting means, where "unset" alone would not say.
_UNSET = {
    "base_url": "the source's own",
    "users_limit": "all",
    "rate_limit": "none, only the upstream's own limits",
    "host_concurrency": "--concurrency",
    "x_bearer_tokens": "none",
}

EPILOG = """\
a job, in the order you run it:
  friendscrape users import users.csv        the users to collect (a CSV)
  friendscrape partitions plan --count 10    split them into 10 partitions
  friendscrape run --partition 1             collect one (one worker each)
  friendscrape status                        where each partition stands, ETA
  friendscrape export --output friends.jsonl the results (else to stdout)
  friendscrape report --output report.html   a page of progress to send on
  friendscrape estimate --from-status        days and cost of what is left

first, on the local simulator:
  friendscrape demo                          a synthetic job end to end
  friendscrape bench --concurrency 10,50     throughput at each concurrency

--store, --log-format and --log-level go before or after the command:
  friendscrape --store sqlite:///job.db status
A setting comes from its flag, else the environment (FRIENDSCRAPE_*), else its
default: docs/configuration.md. `friendscrape COMMAND --help` lists its options.
"""


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def env_names(name: str) -> list[str]:
    """The environment variables that set the setting ``name``, the main one first."""
    alias = Settings.model_fields[name].validation_alias
    choices = getattr(alias, "choices", None) or [f"FRIENDSCRAPE_{name.upper()}"]
    return [str(choice) for choice in choices]


def setting_note(name: str) -> str:
    """``env FRIENDSCRAPE_X (or LEGACY); default Y`` for the setting ``name``."""
    default = Settings.model_fields[name].default
    shown = _UNSET.get(name, "unset") if default is None else _shown(default)
    return f"env {' or '.join(env_names(name))}; default {shown}"


def walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subparser below it."""
    yield parser
    for action in parser._actions:  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from walk(sub)


def setting_of(action: argparse.Action) -> str | None:
    """The setting an option sets, if any: its ``dest`` names a Settings field, and it
    leaves the value to Settings when not given (no default of its own, none announced
    in its help as ``(default: ...)``, as demo's options have)."""
    name = action.dest.removeprefix("global_")  # the options given before a command
    own_default = action.default is not None or "(default:" in (action.help or "")
    return name if name in Settings.model_fields and not own_default else None


def note_settings(parser: argparse.ArgumentParser) -> None:
    """Add its environment names and default to the help of every option, in ``parser``
    and below, whose value is a setting (see setting_of)."""
    for each in walk(parser):
        for action in each._actions:
            name = setting_of(action)
            if name is not None and action.help != argparse.SUPPRESS:
                note = setting_note(name)
                text = action.help or ""
                hand = f"(env {env_names(name)[0]})"  # a name written by hand: completed
                if note in text:
                    continue
                if hand in text:
                    action.help = text.replace(hand, f"({note})")
                else:
                    action.help = f"{text} ({note})" if text else note
