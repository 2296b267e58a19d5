"""The layers' rule, held against the code: no module imports from a layer above it.

Read from the source with ``ast`` (every import, at module level, inside functions and
under TYPE_CHECKING alike), so a lazy import cannot hide an arrow that runs the wrong way.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "friendscrape"

# Each part of the code, and the parts it must never import. A part is a package under
# friendscrape/ (core, fetch, ...) or a top-level module (cli, config, ...).
NEVER: dict[str, frozenset[str]] = {
    "core": frozenset({"cli", "commands", "simulator"}),
    # Each command defines its own options (add_options) with the general argument types
    # of ``arguments``; the face mounts them, never the other way round.
    "commands": frozenset({"cli", "clihelp"}),
    "fetch": frozenset({"sources", "core", "commands", "stores", "simulator", "cli"}),
    "stores": frozenset({"sources", "fetch", "commands", "core", "simulator", "cli"}),
    "sources": frozenset({"stores", "core", "commands", "simulator", "cli"}),
    # The simulator's own command line (simulator/cli.py) takes nothing of the product's
    # face either: its option types come from ``arguments``, below both.
    "simulator": frozenset(
        {"core", "commands", "stores", "sources", "fetch", "cli", "argtypes", "clihelp"}
    ),
    "cli": frozenset({"simulator"}),
    "models": frozenset({"core", "commands", "stores", "sources", "fetch", "simulator"}),
    "errors": frozenset({"core", "commands", "stores", "sources", "fetch", "simulator"}),
    # Settings are built below every layer that takes them: the source names they check
    # come from ``platforms``.
    "config": frozenset(
        {"sources", "core", "commands", "stores", "fetch", "simulator", "cli", "clihelp"}
    ),
}
# Parsers are pure functions of bytes: they import nothing of ours but these.
PARSE_MAY_IMPORT = frozenset({"parse", "models", "errors"})
# Parts of the command line's face, and the only parts that may import each: nothing
# below the face reaches up into it.
FACE: dict[str, frozenset[str]] = {
    "argtypes": frozenset({"cli", "clihelp"}),
}
# The ground: modules every layer may use, which import nothing of ours.
GROUND = frozenset({"platforms", "arguments", "credentials", "defaults"})
# Settings stop at the door: below the commands each part takes only its own small frozen
# config (HttpConfig, LimiterConfig, StoreConfig ...), as httpx's client takes a Timeout
# and never a settings object. The configs are built at the edge: configparts for what a
# command opens (its store, its source), and the one module of core named below for a run.
SETTINGS = frozenset({"config", "configparts"})
TAKE_NO_SETTINGS = frozenset({"core", "fetch", "sources", "stores", "parse"})
SETTINGS_EDGE = frozenset({"friendscrape.core.assemble"})


def part_of(module: str) -> str:
    """``friendscrape.core.pipeline`` -> ``core``; ``friendscrape.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imports_of(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, imported friendscrape module) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root.name:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != root.name:
                continue
            if target == root.name:
                # ``from friendscrape import cli``: each name is a module of the package.
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def violations(root: Path) -> list[str]:
    """Every import in the package at ``root`` that breaks the rule, as readable lines."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        source = part_of(module)
        for line, target in imports_of(path, root):
            dest = part_of(target)
            if dest == source:
                continue
            where = f"{path.relative_to(root.parent)}:{line} imports {target}"
            if source == "parse" and dest not in PARSE_MAY_IMPORT:
                found.append(f"{where} (parse imports only models and errors)")
            elif dest in NEVER.get(source, frozenset()):
                found.append(f"{where} ({source} must never import {dest})")
            elif dest in SETTINGS and source in TAKE_NO_SETTINGS and module not in SETTINGS_EDGE:
                why = "takes its own small config, never Settings: build it at the edge"
                found.append(f"{where} ({source} {why})")
            elif dest in FACE and source not in FACE[dest]:
                allowed = " and ".join(sorted(FACE[dest]))
                found.append(f"{where} (only {allowed} may import {dest}, the face)")
            elif source in GROUND:
                found.append(f"{where} ({source} imports nothing of friendscrape)")
    return found


def test_no_module_imports_from_a_layer_above_it() -> None:
    assert PACKAGE.is_dir()
    assert violations(PACKAGE) == []


def test_the_package_is_split_by_role() -> None:
    roles = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"core", "commands", "fetch", "sources", "parse", "stores", "simulator"} <= roles


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("core/pipeline.py", "from friendscrape.commands.run import run\n", "core"),
        ("fetch/http.py", "from friendscrape.sources.base import Source\n", "fetch"),
        ("stores/sqlite.py", "import friendscrape.core.counters\n", "stores"),
        ("parse/page.py", "from friendscrape.fetch import http\n", "parse"),
        ("cli.py", "def f():\n    from friendscrape import simulator\n", "cli"),
        ("core/collect.py", "from ..simulator import app\n", "core"),
        ("config.py", "def f():\n    from friendscrape.sources import SOURCE_NAMES\n", "config"),
        ("commands/simulate.py", "from friendscrape import argtypes\n", "argtypes"),
        ("commands/export.py", "def f():\n    from friendscrape import cli\n", "never import cli"),
        ("commands/plan.py", "from friendscrape.clihelp import walk\n", "never import clihelp"),
        ("simulator/cli.py", "from friendscrape import clihelp\n", "simulator"),
        ("platforms.py", "from friendscrape.errors import UsageError\n", "platforms"),
        ("core/lease.py", "if TYPE_CHECKING:\n    from friendscrape.config import S\n", "Settings"),
        ("fetch/limiter.py", "def f():\n    from friendscrape import config\n", "Settings"),
        ("sources/__init__.py", "from ..config import Settings\n", "Settings"),
        ("stores/sqlite.py", "from friendscrape.configparts import store_config\n", "Settings"),
        ("core/pipeline.py", "from friendscrape.configparts import source_config\n", "Settings"),
        ("defaults.py", "from friendscrape.config import Settings\n", "defaults"),
    ],
)
def test_the_rule_sees_an_arrow_that_runs_the_wrong_way(
    tmp_path: Path, module: str, source: str, rule: str
) -> None:
    root = tmp_path / "friendscrape"
    for package in ("core", "fetch", "stores", "parse", "sources", "commands", "simulator"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / module).write_text(source)
    found = violations(root)
    assert len(found) == 1
    assert found[0].startswith(f"friendscrape/{module}:")
    assert rule in found[0]


def test_a_run_is_assembled_from_settings_at_the_edge_of_core_alone(tmp_path: Path) -> None:
    root = tmp_path / "friendscrape"
    (root / "core").mkdir(parents=True)
    (root / "core" / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    edge = "from friendscrape.config import Settings\nfrom friendscrape import configparts\n"
    (root / "core" / "assemble.py").write_text(edge)
    (root / "commands.py").write_text(edge)
    (root / "cli.py").write_text(edge)
    assert violations(root) == []
    (root / "core" / "assembled.py").write_text(edge)
    assert len(violations(root)) == 2


# Inside commands/: the read model the commands share (``progress``) imports no command,
# and the status command is imported by the command line alone (what estimate and report
# read of a job's progress lives in ``progress``).
SHARED_BY_COMMANDS = "commands.progress"
ONLY_THE_CLI_IMPORTS = "commands.status"


def names_imported(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``imports_of``, and ``X.y`` for each ``from X import y`` (y may be a module, as in
    ``from friendscrape.commands import status``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: dict[int, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.setdefault(node.lineno, []).extend(alias.name for alias in node.names)
    for line, target in imports_of(path, root):
        yield line, target
        for name in names.get(line, []):
            yield line, f"{target}.{name}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def command_reach(root: Path) -> list[str]:
    """Imports that break the rule of commands/ above, as readable lines."""
    shared = f"{root.name}.{SHARED_BY_COMMANDS}"
    status = f"{root.name}.{ONLY_THE_CLI_IMPORTS}"
    found: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        for line, target in names_imported(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            command = _within(target, f"{root.name}.commands") and not _within(target, shared)
            if _within(source, shared) and command:
                why = "the commands' shared read model imports no command"
                found.setdefault((where, "shared"), f"{where} imports {target} ({why})")
            outside = not _within(source, status) and source != f"{root.name}.cli"
            if _within(target, status) and outside:
                why = f"only the command line imports {ONLY_THE_CLI_IMPORTS}"
                found.setdefault((where, "cli"), f"{where} imports {target} ({why})")
    return list(found.values())


def test_commands_share_their_read_model_not_each_other() -> None:
    assert command_reach(PACKAGE) == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("commands/progress/figures.py", "from friendscrape.commands import estimate\n", "shared"),
        ("commands/estimate.py", "from friendscrape.commands.status import table\n", "only"),
    ],
)
def test_the_commands_rule_sees_a_command_imported_by_another(
    tmp_path: Path, module: str, source: str, rule: str
) -> None:
    root = tmp_path / "friendscrape"
    for package in ("commands", "commands/progress", "commands/status"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "cli.py").write_text("from friendscrape.commands import status\n")
    (root / module).write_text(source)
    found = command_reach(root)
    assert len(found) == 1
    assert found[0].startswith(f"friendscrape/{module}:")
    assert rule in found[0]


# Every command line mounts every command's options, so a command's options module (and
# its package's ``__init__``) imports only these: the argument types, the platforms'
# names, the defaults and the settings' rules. Its code loads when it runs.
OPTIONS_MAY_IMPORT = frozenset({"arguments", "platforms", "defaults", "config"})


def is_options_module(path: Path, root: Path) -> bool:
    """``commands/run/options.py``, ``commands/export_options.py`` or a command package's
    ``__init__.py``."""
    rel = path.relative_to(root)
    if rel.parts[0] != "commands" or len(rel.parts) == 1:
        return False
    in_package = len(rel.parts) == 3  # commands/PACKAGE/FILE
    return path.stem in {"options", "__init__"} if in_package else path.stem.endswith("_options")


def heavy_options(root: Path) -> list[str]:
    """Imports of an options module beyond ``OPTIONS_MAY_IMPORT``, as readable lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if not is_options_module(path, root):
            continue
        for line, target in imports_of(path, root):
            if part_of(target) not in OPTIONS_MAY_IMPORT and not target.endswith("_options"):
                allowed = ", ".join(sorted(OPTIONS_MAY_IMPORT))
                where = f"{path.relative_to(root.parent)}:{line} imports {target}"
                found.append(f"{where} (options modules import only {allowed})")
    return found


def test_options_modules_import_nothing_heavy() -> None:
    assert heavy_options(PACKAGE) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("commands/run/options.py", "from friendscrape.sources import SOURCE_NAMES\n"),
        ("commands/run/__init__.py", "from friendscrape.commands.run.command import run\n"),
        ("commands/export_options.py", "from friendscrape.stores import opened_store\n"),
    ],
)
def test_the_options_rule_sees_a_heavy_import(tmp_path: Path, module: str, source: str) -> None:
    root = tmp_path / "friendscrape"
    (root / "commands" / "run").mkdir(parents=True)
    (root / module).write_text(source)
    (root / "commands" / "export.py").write_text(source)  # a command's code: not options
    found = heavy_options(root)
    assert len(found) == 1
    assert found[0].startswith(f"friendscrape/{module}:")


MAX_FUNCTION_LINES = 80


def long_functions(root: Path) -> list[str]:
    """Every function (method, nested function) over ``MAX_FUNCTION_LINES`` lines, its
    decorators and docstring included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - start + 1
            if lines > MAX_FUNCTION_LINES:
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                found.append(f"{where} {node.name} is {lines} lines")
    return found


def test_no_function_is_over_80_lines() -> None:
    assert long_functions(PACKAGE) == []


def test_the_length_rule_sees_a_long_function(tmp_path: Path) -> None:
    root = tmp_path / "friendscrape"
    root.mkdir()
    lines = [f"x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES - 1)]
    fits = "".join(f"    {line}" for line in lines)
    (root / "fits.py").write_text(f"def f() -> None:\n{fits}")
    long = "".join(f"        {line}" for line in [*lines, "y = 1\n"])
    (root / "long.py").write_text(f"class C:\n    async def g(self) -> None:\n{long}")
    assert long_functions(root) == [f"friendscrape/long.py:2 g is {MAX_FUNCTION_LINES + 1} lines"]
