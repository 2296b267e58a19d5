"""Compressed exports (`--output edges.csv.gz`, `.jsonl.zst`, `--compress gzip` to stdout)
the way users run them, a new process per command: every text format decompresses to
exactly the bytes of its uncompressed export, loads in pandas and duckdb as a compressed
file, streams in flat memory, and a failed or refused export leaves no file behind."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from friendscrape.configdoc import environ_without_configuration
from synthetic import build

TEXT_FORMATS = [
    ("jsonl", ["--format", "jsonl"], "jsonl"),
    ("csv", ["--format", "csv"], "csv"),
    ("edges csv", ["--format", "edges"], "csv"),
    ("edges jsonl", ["--format", "edges"], "jsonl"),
    ("nodes csv", ["--format", "nodes"], "csv"),
    ("nodes jsonl", ["--format", "nodes"], "jsonl"),
    ("graphml", ["--format", "graphml"], "graphml"),
    ("gexf", ["--format", "gexf"], "gexf"),
]


def _command(store: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "friendscrape.cli", "export", "--store", store, *args]


def _run(
    store: str, cwd: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        _command(store, *args),
        cwd=cwd,
        env=env or environ_without_configuration(os.environ),
        capture_output=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def _unzstd(path: Path) -> bytes:
    with pa.CompressedInputStream(pa.OSFile(str(path)), "zstd") as stream:
        return bytes(stream.read())


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of 300 users with 40 friends each (half of them users of the job)."""
    db = tmp_path_factory.mktemp("job") / "job.db"
    build(db, users=300, friends=40)
    return f"sqlite:///{db}"


@pytest.mark.parametrize(
    ("_name", "args", "suffix"), TEXT_FORMATS, ids=[f[0] for f in TEXT_FORMATS]
)
def test_every_text_format_decompresses_to_its_plain_export(
    job: str, tmp_path: Path, _name: str, args: list[str], suffix: str
) -> None:
    plain = _run(job, tmp_path, *args, "--output", f"plain.{suffix}")
    assert plain.returncode == 0, plain.stderr
    expected = (tmp_path / f"plain.{suffix}").read_bytes()
    assert len(expected) > 10_000
    for name in (f"out.{suffix}.gz", f"out.{suffix}.zst"):
        done = _run(job, tmp_path, *args, "--output", name)
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode().endswith(f" to {name}\n")
        written = tmp_path / name
        data = gzip.decompress(written.read_bytes()) if name.endswith(".gz") else _unzstd(written)
        assert data == expected, name
        assert written.stat().st_size < len(expected) / 3
    # On stdout no suffix tells the table's format.
    table = ["--as", suffix] if args[1] in {"edges", "nodes"} else []
    streamed = _run(job, tmp_path, *args, *table, "--compress", "gzip")
    assert streamed.returncode == 0, streamed.stderr
    assert gzip.decompress(streamed.stdout) == expected
    assert not list(tmp_path.glob(".*partial"))


def test_compressed_edges_load_in_pandas_and_duckdb(job: str, tmp_path: Path) -> None:
    for name in ("edges.csv", "edges.csv.gz", "edges.csv.zst", "edges.jsonl.gz"):
        done = _run(job, tmp_path, "--format", "edges", "--output", name)
        assert done.returncode == 0, done.stderr
    plain = pd.read_csv(tmp_path / "edges.csv", dtype=str, keep_default_na=False)
    assert len(plain) == 300 * 40
    packed = pd.read_csv(tmp_path / "edges.csv.gz", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(packed, plain)
    lines = pd.read_json(tmp_path / "edges.jsonl.gz", lines=True, dtype=False)
    assert list(lines.source_id) == list(plain.source_id)
    with duckdb.connect() as db:
        for name in ("edges.csv.gz", "edges.csv.zst"):
            path = tmp_path / name
            rows = db.sql(
                f"SELECT count(*), count(DISTINCT source_id) FROM read_csv_auto('{path}')"
            )
            assert rows.fetchone() == (300 * 40, 300), name


def _small_files() -> None:
    """In the child: files stop at 64 KiB (EFBIG, as on a full disk)."""
    import resource  # noqa: PLC0415 - only in the child

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))


def test_a_failed_compressed_export_leaves_no_partial_file(tmp_path: Path) -> None:
    build(tmp_path / "job.db", users=3000, friends=100)  # gzip of some 1.5 MB
    store = f"sqlite:///{tmp_path / 'job.db'}"
    old = gzip.compress(b"the previous export\n")
    (tmp_path / "old.csv.gz").write_bytes(old)
    for name in ("new.csv.gz", "old.csv.gz", "new.jsonl.zst"):
        done = _run(store, tmp_path, "--format", "edges", "--output", name, preexec_fn=_small_files)
        assert done.returncode == 2, done.stderr
        assert done.stderr.decode().splitlines() == [
            f"friendscrape: error: cannot write {name!r}: File too large"
        ]
    assert not (tmp_path / "new.csv.gz").exists()
    assert not (tmp_path / "new.jsonl.zst").exists()
    assert (tmp_path / "old.csv.gz").read_bytes() == old
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--format", "edges", "--output", "e.parquet.gz"],
            (
                "Parquet is compressed already: give --output FILE.parquet (no .gz or .zst) "
                "and no --compress"
            ),
        ),
        (
            ["--format", "edges", "--as", "parquet", "--compress", "zstd", "--output", "e.pq"],
            (
                "Parquet is compressed already: give --output FILE.parquet (no .gz or .zst) "
                "and no --compress"
            ),
        ),
        (
            ["--format", "csv", "--compress", "zstd", "--output", "e.csv.gz"],
            (
                "--compress zstd contradicts --output 'e.csv.gz', which names a gzip file: "
                "change the suffix, or leave --compress out"
            ),
        ),
        (
            ["--format", "jsonl", "--compress", "none", "--output", "e.jsonl.zst"],
            (
                "--compress none contradicts --output 'e.jsonl.zst', which names a zstd file: "
                "change the suffix, or leave --compress out"
            ),
        ),
    ],
)
def test_refused_compressions_are_one_line(
    job: str, tmp_path: Path, args: list[str], says: str
) -> None:
    done = _run(job, tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == [f"friendscrape: error: {says}"]
    assert list(tmp_path.iterdir()) == []


def test_zstd_without_pyarrow_is_one_line_before_any_file(job: str, tmp_path: Path) -> None:
    """On Python before 3.14, zstd comes from pyarrow: without it, one line, no file."""
    if sys.version_info >= (3, 14):
        pytest.skip("compression.zstd is in the standard library")
    (tmp_path / "pyarrow").mkdir()
    (tmp_path / "pyarrow" / "__init__.py").write_text("raise ImportError('hidden')\n")
    env = environ_without_configuration(os.environ)
    env["PYTHONPATH"] = str(tmp_path)
    done = _run(job, tmp_path, "--format", "edges", "--output", "e.csv.zst", env=env)
    assert done.returncode == 2, done.stderr
    says = "zstd output needs pyarrow: pip install 'friendscrape[parquet]' (or write .gz)"
    assert done.stderr.decode().splitlines() == [f"friendscrape: error: {says}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyarrow"]


def _peak_mb(store: Path, out: Path) -> float:
    proc = subprocess.Popen(
        _command(f"sqlite:///{store}", "--format", "edges", "--output", str(out)),
        env=environ_without_configuration(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert proc.stderr is not None
    error = proc.stderr.read().decode()
    proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, error
    return usage.ru_maxrss / 1024


def test_compressed_exports_stream_in_flat_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    build(small, users=500, friends=200)
    build(large, users=20_000, friends=200)
    for suffix in ("csv.gz", "csv.zst"):
        small_mb = _peak_mb(small, tmp_path / f"small.{suffix}")
        large_mb = _peak_mb(large, tmp_path / f"large.{suffix}")
        sizes = [(tmp_path / f"{n}.{suffix}").stat().st_size for n in ("small", "large")]
        assert sizes[1] > 20 * sizes[0]
        assert large_mb - small_mb < 40, (suffix, small_mb, large_mb)


@pytest.mark.bigquery
async def test_bigquery_exports_compress_as_sqlite_ones_do(
    bq_emulator: Any, bq_dataset: str, tmp_path: Path
) -> None:
    from export.test_output_paths import _fill  # noqa: PLC0415
    from friendscrape.configparts import store_config  # noqa: PLC0415
    from friendscrape.stores import opened_store  # noqa: PLC0415
    from storefixtures import bq_settings  # noqa: PLC0415

    settings = bq_settings(
        bq_emulator.endpoint, bq_dataset, bigquery_grpc_endpoint=bq_emulator.grpc_endpoint
    )
    async with opened_store(store_config(settings), create=True) as store:
        await _fill(store)
    env = environ_without_configuration(os.environ)
    env["FRIENDSCRAPE_BIGQUERY_ENDPOINT"] = bq_emulator.endpoint
    env["FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT"] = bq_emulator.grpc_endpoint
    for args, plain, packed in (
        (["--format", "csv"], "rows.csv", "rows.csv.gz"),
        (["--format", "edges"], "edges.csv", "edges.csv.gz"),
    ):
        for name in (plain, packed):
            done = await asyncio.to_thread(
                _run, settings.store, tmp_path, *args, "--output", name, env=env
            )
            assert done.returncode == 0, done.stderr
        expected = (tmp_path / plain).read_bytes()
        assert expected.count(b"\n") > 40
        assert gzip.decompress((tmp_path / packed).read_bytes()) == expected
    assert not list(tmp_path.glob(".*partial"))
