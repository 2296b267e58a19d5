"""docs/configuration.md matches the Settings model, and the generator shows what it should."""

from __future__ import annotations

import difflib
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from friendscrape.config import Settings
from friendscrape.configdoc import (
    REGENERATE,
    env_names,
    environ_without_configuration,
    render_configuration_markdown,
)
from friendscrape.worker import PARTITION_ENV_NAMES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_page_is_current() -> None:
    expected = render_configuration_markdown()
    actual = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/configuration.md",
                    "generated",
                )
            )[:40]
        )
        msg = f"docs/configuration.md is stale; regenerate it with:\n    {REGENERATE}\n{diff}"
        raise AssertionError(msg)


def test_every_setting_is_on_the_page_with_its_environment_names() -> None:
    page = render_configuration_markdown()
    for name, info in Settings.model_fields.items():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{name}` |"))
        for env in env_names(name, info):
            assert f"`{env}`" in row
        assert info.description
        assert info.description.replace("|", "\\|") in row
    for env in PARTITION_ENV_NAMES:
        assert f"`{env}`" in page


def test_legacy_names_are_listed_after_the_friendscrape_name() -> None:
    info = Settings.model_fields["concurrency"]
    assert env_names("concurrency", info) == ["FRIENDSCRAPE_CONCURRENCY", "MAX_THREADS"]


class _Example(BaseSettings):
    api_token: SecretStr = Field(
        SecretStr("hunter2-do-not-show"),
        validation_alias=AliasChoices("api_token", "EXAMPLE_API_TOKEN"),
        description="A token.",
    )
    mode: str | None = Field(None, description="Either | or.")
    width: int = Field(3, ge=1, le=9, description="How wide.")


def test_secret_defaults_are_never_rendered() -> None:
    page = render_configuration_markdown(_Example)
    assert "hunter2" not in page
    row = next(line for line in page.splitlines() if line.startswith("| `api_token` |"))
    assert "`EXAMPLE_API_TOKEN`" in row
    assert "secret" in row


def test_cells_escape_pipes_and_show_bounds_and_unset_defaults() -> None:
    page = render_configuration_markdown(_Example)
    mode = next(line for line in page.splitlines() if line.startswith("| `mode` |"))
    assert "`MODE`" in mode
    assert "*(unset)*" in mode
    assert "Either \\| or." in mode
    width = next(line for line in page.splitlines() if line.startswith("| `width` |"))
    assert "`3`" in width
    assert "≥ 1, ≤ 9" in width


def test_environment_without_configuration_drops_every_name_friendscrape_reads() -> None:
    environ = {
        "PATH": "/bin",
        "HOME": "/root",
        "MAX_THREADS": "3",  # legacy name of concurrency
        "DYNO": "worker.2",  # --partition auto
        "JOB_COMPLETION_INDEX": "0",
        "FRIENDSCRAPE_STORE": "sqlite:///x.db",
        "FRIENDSCRAPE_SOMETHING_NEW": "1",
    }
    assert environ_without_configuration(environ) == {"PATH": "/bin", "HOME": "/root"}
