"""Bad input wherever a user types: one clear error line on stderr, non-zero, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from friendscrape import argtypes, cli
from friendscrape.commands import simulate
from friendscrape.config import Settings, load_settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.errors import UsageError
from friendscrape.simulator import SyntheticGraph
from reliability.harness import clean_env, run_cli, seed_store, store_url

pytestmark = pytest.mark.slow

BASE = "http://127.0.0.1:9"  # never contacted: every case fails before a request


async def _error_line(args: list[str]) -> str:
    code, run = await run_cli(args, env=clean_env(), timeout=30)
    assert code != 0, (args, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, (args, run.stderr)
    assert lines[0].startswith("friendscrape: error: "), lines[0]
    return lines[0].lower()


def _run(db: Path, *extra: str, partition: str = "1") -> list[str]:
    run = ["run", "--store", store_url(db), "--partition", partition, "--source", "twitter-mobile"]
    return [*run, "--base-url", BASE, *extra]


async def test_every_bad_input_is_one_clear_line(tmp_path: Path, graph: SyntheticGraph) -> None:
    planned = tmp_path / "planned.db"
    await seed_store(planned, graph, 3)
    empty = tmp_path / "empty.db"
    good_csv = tmp_path / "users.csv"
    good_csv.write_text("user_id,screen_name\n1,ada_lovelace\n", encoding="utf-8")
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,name\n1,ada\n", encoding="utf-8")
    unplanned = tmp_path / "unplanned.db"

    async def import_then_run() -> str:
        code, run = await run_cli(
            ["users", "import", "--store", store_url(unplanned), str(good_csv)], env=clean_env()
        )
        assert code == 0, run.stderr
        return await _error_line(_run(unplanned))

    cases = {
        "unknown partition": (_error_line(_run(planned, partition="7")), "not in the plan"),
        "no plan yet": (import_then_run(), "no partition plan yet"),
        "empty users table": (_error_line(_run(empty)), "no users"),
        "unreachable store": (
            _error_line(_run(tmp_path / "no" / "such" / "dir.db")),
            "folder does not exist",
        ),
        "malformed store URL": (
            _error_line(["run", "--store", "sqlite:/x.db", "--partition", "1"]),
            "store url",
        ),
        "store URL without a scheme": (
            _error_line(["partitions", "show", "--store", "friendscrape.db"]),
            "no scheme",
        ),
        "concurrency 0": (_error_line(_run(planned, "--concurrency", "0")), "concurrency"),
        "unknown source": (_error_line(_run(planned, "--source", "myspace")), "invalid choice"),
        "missing CSV": (
            _error_line(
                ["users", "import", "--store", store_url(empty), str(tmp_path / "nope.csv")]
            ),
            "cannot read",
        ),
        "bad CSV header": (
            _error_line(["users", "import", "--store", store_url(empty), str(bad_header)]),
            "header must be user_id,screen_name",
        ),
        "unknown partition name": (
            _error_line(_run(planned, partition="seven")),
            "partition",
        ),
    }
    lines = await asyncio.gather(*(coro for coro, _ in cases.values()))
    for (case, (_, expected)), line in zip(cases.items(), lines, strict=True):
        assert expected.lower() in line, (case, line)


# -- every option and every setting, with hostile values -------------------------------

HOSTILE = ("nan", "inf", "-inf", "-1", "1e308", "99999999999999999999", "", "a\r\nb")
HOSTILE_SETTING_NUMBERS = (*HOSTILE[:-1], "1e-300")
HOSTILE_TEXT = ("a\r\nb", "esc\x1b[2J", "tab\there", "del\x7f")  # no NUL: the OS refuses it


def _leaf_parsers(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command that runs (``users import``, ``status``...) and its parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_parsers(sub, (*words, name))


def _commands() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and the parser that reads its options: `simulate` hands its words
    to the simulator's own parser."""
    for words, parser in _leaf_parsers(cli._build_parser()):
        yield words, simulate.build_parser() if words == ("simulate",) else parser


def _valued(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positionals that take a value (not flags, --help, --version)."""
    return [a for a in parser._actions if a.nargs != 0 and a.dest != "help"]


def _cases(tmp_path: Path) -> Iterator[tuple[list[str], argparse.Action]]:
    """One command line per (command, value-taking option, hostile value)."""
    good_csv = tmp_path / "good.csv"
    good_csv.write_text("user_id,screen_name\n1,ada\n", encoding="utf-8")
    store = store_url(tmp_path / "walk.db")
    for words, parser in _commands():
        actions = _valued(parser)
        for action in actions:
            if action.type in (argtypes.output_file, argtypes.input_file):
                values: tuple[str, ...] = ("", "a\r\nb", str(tmp_path), str(tmp_path / "no" / "f"))
            else:
                values = HOSTILE
            for value in values:
                args = list(words)
                for other in actions:  # the other required values, good ones
                    if other is action:
                        continue
                    if not other.option_strings:
                        args.append(str(good_csv))
                    elif other.required:
                        args.append(f"{other.option_strings[0]}=1")
                    elif other.dest == "store":
                        args.append(f"--store={store}")
                    elif other.dest == "partition":  # else the environment is asked first
                        args.append("--partition=1")
                    elif other.dest == "base_url":  # else a warning about the default
                        args.append(f"--base-url={BASE}")
                if action.option_strings:
                    args.append(f"{action.option_strings[-1]}={value}")
                else:
                    args.append(value)
                yield args, action


def _names(action: argparse.Action) -> set[str]:
    names = {action.dest.replace("_", "-")}
    names |= {opt.lstrip("-") for opt in action.option_strings}
    return names


def test_every_option_of_every_command_refuses_hostile_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walks the parser itself, so an option added later is covered without editing this."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name not in environ_without_configuration(os.environ):
            monkeypatch.delenv(name)
    checked = 0
    walked: set[str] = set()
    for args, action in _cases(tmp_path):
        try:
            code = cli.main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
        err = capsys.readouterr().err
        assert code != 0, args
        assert "Traceback" not in err, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("friendscrape: error: "), (args, lines[0])
        said = lines[0].replace("_", "-")
        assert any(name in said for name in _names(action)), (args, lines[0])
        checked += 1
        walked.add(args[0])
    assert checked > 300  # every command was walked (the parser has ~50 value options)
    assert "simulate" in walked  # its options live in the simulator's parser


def _setting_values(annotation: object) -> tuple[str, ...]:
    text = str(annotation)
    if "bool" in text:
        return ("nan", "2", "yes please")
    if "int" in text or "float" in text:
        return HOSTILE_SETTING_NUMBERS
    return HOSTILE_TEXT


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_refuses_hostile_values_from_the_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = Settings.model_fields[name]
    env_name = f"FRIENDSCRAPE_{name.upper()}"
    for value in _setting_values(field.annotation):
        monkeypatch.setenv(env_name, value)
        with pytest.raises(UsageError, match="invalid setting") as refused:
            load_settings()
        assert name.upper() in str(refused.value).upper(), (name, value)


async def test_hostile_values_as_a_user_types_them() -> None:
    """A few of the cases above as real processes: one line, exit 2, nothing started."""
    cases = {
        ("status", "--window", "nan"): "--window",
        ("partitions", "plan", "--count", "99999999999999999999"): "--count",
        ("report", "--output", "/missing/dir/r.html"): "--output",
        ("run", "--partition", "1", "--base-url", "http://[::1"): "base_url",
        ("simulate", "--port", "99999"): "--port",
    }
    lines = await asyncio.gather(*(_error_line(list(args)) for args in cases))
    for expected, line in zip(cases.values(), lines, strict=True):
        assert expected in line, line
    code, run = await run_cli(
        ["run", "--partition", "1"], env=clean_env(FRIENDSCRAPE_RATE_LIMIT="1e-300"), timeout=30
    )
    assert code == 2, run.stderr
    expected = "invalid setting FRIENDSCRAPE_RATE_LIMIT: '1e-300' is out of range"
    assert run.stderr.strip().splitlines() == [
        f"friendscrape: error: {expected} (a number from 0.01 to 1e+09)"
    ]
