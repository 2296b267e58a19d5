"""BigQuery commands load only the libraries they use: no pandas, pyarrow or Storage API
client at start-up (some 80 MB of a small dyno), and a load job's file goes up in small
chunks. Each command runs in a new process, whose modules are then listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bqemu import Emulator
from friendscrape.configdoc import environ_without_configuration
from friendscrape.stores import bigquery_lib
from storefixtures import PROJECT

# What google-cloud-bigquery would load beside itself, were it let.
HEAVY = ("pandas", "pyarrow", "numpy", "db_dtypes", "google.cloud.bigquery_storage_v1")

# Runs the command line in this process, then prints the modules loaded.
_COMMAND_THEN_MODULES = textwrap.dedent(
    """
    import json, sys
    from friendscrape.cli import main
    code = main(sys.argv[1:])
    loaded = sorted(name for name, module in sys.modules.items() if module is not None)
    print(json.dumps({"code": code, "modules": loaded}))
    """
)


def _cli_modules(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_THEN_MODULES, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    report = json.loads(last)
    assert "modules" in report, done.stderr[-2000:]
    return int(report["code"]), set(report["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))


@pytest.mark.bigquery
def test_bigquery_commands_start_without_dataframe_libraries(
    bq_emulator: Emulator, bq_dataset: str, tmp_path: Path
) -> None:
    env = environ_without_configuration(os.environ)
    env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = bq_emulator.endpoint
    env["FRIENDSCRAPE_LOG_LEVEL"] = "warning"
    store = ["--store", f"bigquery://{PROJECT}/{bq_dataset}"]
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,alice\n2,bob\n", encoding="utf-8")
    for args in (
        ["users", "import", str(users)],
        ["partitions", "plan", "--count", "1"],
        ["status"],
        ["status", "--json"],
        ["report", "--output", str(tmp_path / "report.html")],
        ["export", "--format", "jsonl", "--output", str(tmp_path / "out.jsonl")],
    ):
        code, modules = _cli_modules([*args, *store], env, tmp_path)
        assert code == 0, args
        assert "google.cloud.bigquery" in modules, args  # the store was used
        assert _heavy(modules) == [], args


def test_result_writer_loads_without_dataframe_libraries() -> None:
    # A run loads the Storage Write API client when it first writes; the channel it
    # opens connects lazily, so no server is needed to see what it loaded.
    script = textwrap.dedent(
        """
        import json, sys
        from friendscrape.stores.bigquery_schema import Location
        from friendscrape.stores.bigquery_write import StorageWriter
        StorageWriter.connect(Location("p", "d"), "t", grpc_endpoint="127.0.0.1:9")
        loaded = sorted(name for name, module in sys.modules.items() if module is not None)
        import pyarrow  # still importable afterwards, as a Parquet export needs
        print(json.dumps(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set(json.loads(done.stdout))
    assert "google.cloud.bigquery_storage_v1" in modules
    assert [m for m in _heavy(modules) if not m.startswith("google.cloud")] == []


@pytest.mark.bigquery
def test_import_uploads_its_file_in_small_chunks(
    bq_emulator: Emulator, bq_dataset: str, tmp_path: Path
) -> None:
    # `users import`, with the chunk size of each resumable upload it starts recorded.
    script = textwrap.dedent(
        """
        import json, sys
        from google.resumable_media.requests import ResumableUpload
        chunks = []
        init = ResumableUpload.__init__
        def spy(self, url, chunk_size, *args, **kwargs):
            chunks.append(chunk_size)
            init(self, url, chunk_size, *args, **kwargs)
        ResumableUpload.__init__ = spy
        from friendscrape.cli import main
        print(json.dumps({"code": main(sys.argv[1:]), "chunks": chunks}))
        """
    )
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n1,alice\n2,bob\n", encoding="utf-8")
    env = environ_without_configuration(os.environ)
    env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = bq_emulator.endpoint
    store = f"bigquery://{PROJECT}/{bq_dataset}"
    done = subprocess.run(
        [sys.executable, "-c", script, "users", "import", str(users), "--store", store],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "chunks": [bigquery_lib.UPLOAD_CHUNK]}
    assert bigquery_lib.UPLOAD_CHUNK % (256 * 1024) == 0
