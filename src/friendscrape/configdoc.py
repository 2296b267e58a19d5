"""Render docs/configuration.md from the Settings model, so the page cannot drift from it,
and name every environment variable friendscrape reads.

Regenerate the page after changing ``friendscrape.config``::

    python -m friendscrape.configdoc > docs/configuration.md
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from friendscrape.config import Settings
from friendscrape.worker import PARTITION_ENV_NAMES

REGENERATE = "python -m friendscrape.configdoc > docs/configuration.md"

_HEADER = f"""\
# Configuration

<!-- Generated from friendscrape.config.Settings; do not edit by hand.
     Regenerate with: {REGENERATE} -->

Every setting can come from the environment (a Heroku config var, a Kubernetes `env:`
entry, a Cloud Run `--set-env-vars`), and a command-line flag, where a command has one,
wins over the environment. Names are not case-sensitive. Where a setting lists more
than one name, the first is the one to use and the others are the names the original
deployment used, still accepted.

Secrets (marked *secret*) are never logged and their values are not shown here.
"""

_PARTITION_SECTION = """\
## Choosing the partition

`friendscrape run --partition N` runs partition N (partitions are numbered from 1, like
SQL `NTILE`). `--partition auto` takes the number from the first of these that is set
(an empty value counts as unset):

| Order | Environment | Set by | Meaning |
|---|---|---|---|
{rows}

A `DYNO` that is not `worker.N` (`web.1`, a one-off `run.1234`, or a Fir-generation name
with no number) is refused with a one-line error, as is `--partition auto` with none of
these set. See [deploying.md](deploying.md).
"""

_PARTITION_ROWS = {
    "FRIENDSCRAPE_PARTITION": ("you", "The partition number, from 1. Wins over the rest."),
    "DYNO": ("Heroku", "`worker.3` is partition 3; other process types are refused."),
    "JOB_COMPLETION_INDEX": ("Kubernetes Indexed Job", "0-based: index 0 is partition 1."),
    "CLOUD_RUN_TASK_INDEX": ("Cloud Run Jobs", "0-based: index 0 is partition 1."),
}

_OTHER_ROWS = (
    (
        "GOOGLE_APPLICATION_CREDENTIALS",
        (
            "Path of a service-account key file for the BigQuery store (Application Default"
            " Credentials). Not needed where the platform gives the worker an identity (a"
            " Cloud Run job's service account, GKE Workload Identity)."
        ),
    ),
    (
        "PYTHONUNBUFFERED",
        "Set to `1` in the container image so each log line reaches the platform at once.",
    ),
)

_OTHER_SECTION = """\
## Read by libraries and the container image

| Environment | Meaning |
|---|---|
{rows}

The container image also sets `FRIENDSCRAPE_STORE=sqlite:////data/friendscrape.db`, a
SQLite file on the image's `/data` volume; set it to `bigquery://PROJECT/DATASET` to use
BigQuery instead.
"""


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`"


def env_names(name: str, info: FieldInfo) -> list[str]:
    """The environment names a field reads, preferred first (the bare field name is a flag)."""
    alias = info.validation_alias
    if alias is None:
        return [name.upper()]
    choices: Iterable[str | AliasPath] = (
        alias.choices if isinstance(alias, AliasChoices) else [alias]
    )
    names = [choice for choice in choices if isinstance(choice, str) and choice != name]
    return [choice.upper() for choice in names] or [name.upper()]


def configuration_env_names(model: type[BaseSettings] = Settings) -> frozenset[str]:
    """Every environment name friendscrape reads: each setting's and ``--partition auto``'s."""
    names = {env for name, info in model.model_fields.items() for env in env_names(name, info)}
    return frozenset(names | set(PARTITION_ENV_NAMES))


def environ_without_configuration(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` less everything friendscrape would read from it (any ``FRIENDSCRAPE_``
    name, the legacy names, the platform's partition names): what a run started by a test
    or a benchmark must get, so the caller's own configuration cannot leak into it."""
    read = configuration_env_names()
    return {
        key: value
        for key, value in environ.items()
        if key.upper() not in read and not key.upper().startswith("FRIENDSCRAPE_")
    }


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(_code(str(arg)) for arg in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(parts)
    if annotation is SecretStr:
        return "text, *secret*"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(info: FieldInfo) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts: list[str] = []
    for item in info.metadata:  # annotated_types.Ge(ge=1), Le(le=20000) ...
        for key, symbol in symbols.items():
            value = getattr(item, key, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.annotation is SecretStr or SecretStr in get_args(info.annotation):
        return "*(secret: not shown)*"
    if info.default is PydanticUndefined:
        return "*(required)*" if info.default_factory is None else "*(computed)*"
    if info.default is None:
        return "*(unset)*"
    if isinstance(info.default, bool):
        return _code(str(info.default).lower())  # as written in the environment
    return _code(str(info.default))


def _setting_rows(model: type[BaseSettings]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        envs = "<br>".join(_code(env) for env in env_names(name, info))
        allowed = _type_name(info.annotation)
        bounds = _bounds(info)
        if bounds:
            allowed = f"{allowed}, {bounds}"
        meaning = info.description or ""
        cells = [_code(name), envs, _default(info), allowed, meaning]
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return rows


def render_configuration_markdown(model: type[BaseSettings] = Settings) -> str:
    """The full text of docs/configuration.md for ``model`` (the Settings of this version)."""
    settings = "\n".join(
        [
            "## Settings",
            "",
            "| Setting | Environment | Default | Allowed | Meaning |",
            "|---|---|---|---|---|",
            *_setting_rows(model),
            "",
        ]
    )
    partition_rows = "\n".join(
        f"| {order} | {_code(name)} | {_PARTITION_ROWS[name][0]} | {_PARTITION_ROWS[name][1]} |"
        for order, name in enumerate(PARTITION_ENV_NAMES, start=1)
    )
    return (
        "\n".join(
            [
                _HEADER,
                settings,
                _PARTITION_SECTION.format(rows=partition_rows),
                _OTHER_SECTION.format(
                    rows="\n".join(f"| {_code(name)} | {text} |" for name, text in _OTHER_ROWS)
                ),
            ]
        ).rstrip("\n")
        + "\n"
    )


def main() -> None:
    """Write the page to stdout."""
    sys.stdout.write(render_configuration_markdown())


if __name__ == "__main__":
    main()
