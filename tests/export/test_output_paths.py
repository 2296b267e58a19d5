"""Where a command's output goes (`export`, `report`, `simulate --write-users`), driven as
users run them, a new process per command: the store itself is refused, symlinks, FIFOs
and devices are written through and never replaced, a full disk or a closed stdout is one
line, GraphML and GEXF are well-formed whatever the store holds, and stdout is written in
a few large writes even under PYTHONUNBUFFERED=1.

Devices are reached through symlinks in the test's folder: a tool that replaced what it
was given would replace the link there, never a node under /dev.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from friendscrape import argtypes, cli
from friendscrape.commands import simulate
from friendscrape.config import Settings
from friendscrape.configdoc import environ_without_configuration
from friendscrape.configparts import store_config
from friendscrape.models import User
from friendscrape.stores import opened_store
from friendscrape.stores.base import Store
from storefixtures import ok_result

USERS = 40
FRIENDS = 6
BAD = "\x00\x01\x08\x0b\x0c\x0e\x1f\ufffe\uffff"
"""Characters XML 1.0 forbids (lone surrogates cannot reach SQLite: it stores UTF-8)."""


# -- a job in a store, and the CLI as a process -----------------------------------------


async def _fill(store: Store, *, bad: bool = False, users: int = USERS) -> None:
    """``users`` users, each collected with FRIENDS friends (some of them users of the
    job); ``bad``: ids and names holding characters XML forbids."""
    mark = BAD if bad else ""
    await store.import_users(
        [User(str(i), f"user{i}{mark if i == 1 else ''}", None) for i in range(1, users + 1)]
    )
    await store.plan_partitions(1)
    await store.save(
        [
            ok_result(
                str(i),
                tuple(f"friend{i}_{j}{mark}" for j in range(FRIENDS)),
                ids=tuple(
                    str((i + j) % users + 1) + (mark if j == 0 else "") for j in range(FRIENDS)
                ),
                screen_name=f"user{i}",
                source="x-api",
            )
            for i in range(1, users + 1)
        ]
    )


def _make_store(db: Path, *, bad: bool = False, users: int = USERS) -> str:
    url = f"sqlite:///{db}"

    async def fill() -> None:
        async with opened_store(store_config(Settings(store=url)), create=True) as store:
            await _fill(store, bad=bad, users=users)

    asyncio.run(fill())
    return url


def _results(db: Path) -> int:
    """The results the store holds, read as a new connection reads them."""
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count: int = conn.execute("SELECT COUNT(*) FROM user_friends").fetchone()[0]
    return count


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _env(**extra: str) -> dict[str, str]:
    env = environ_without_configuration(os.environ)
    env.update(extra)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "friendscrape.cli", *args]


@dataclass
class Done:
    code: int
    out: bytes
    err: str

    def error_line(self) -> str:
        """The one line a refused command says (its log events aside: `simulate` logs JSON
        lines, a BigQuery store says it opened)."""
        assert "Traceback" not in self.err, self.err
        lines = [line for line in self.err.splitlines() if line.startswith("friendscrape:")]
        assert len(lines) == 1, self.err
        assert lines[0].startswith("friendscrape: error: "), self.err
        assert self.err.rstrip("\n").endswith(lines[0]), self.err  # the last word
        return lines[0]


def _run(
    args: list[str], cwd: Path, *, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None
) -> Done:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env or _env(),
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )
    return Done(done.returncode, done.stdout or b"", done.stderr.decode())


def _read_fifo(
    fifo: Path,
    start: Callable[[], subprocess.Popen[bytes]],
    finish: Callable[[subprocess.Popen[bytes]], int] = subprocess.Popen.wait,
) -> tuple[bytes, int]:
    """Hold ``fifo`` open for reading, run ``start()``'s process, and read all it writes
    there until ``finish`` (by default: wait for its exit; run in a thread) returns the
    exit code: (bytes read, exit code). A process that never opens the FIFO (or replaced
    it) leaves it empty, without the reader waiting forever."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    data = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            data.extend(chunk)

    try:
        with start() as process, ThreadPoolExecutor(1) as pool:
            finished = pool.submit(finish, process)
            while not finished.done():
                select.select([fd], [], [], 0.05)  # wakes on data, or to see the end
                drain()
            drain()
            code = finished.result()
    finally:
        os.close(fd)
    return bytes(data), code


# -- case 1: the store itself -----------------------------------------------------------


def _store_names(tmp_path: Path) -> dict[str, str]:
    """Every way of naming the store (or one of its side files) as an output."""
    db = tmp_path / "job.db"
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    (tmp_path / "wal-link").symlink_to(tmp_path / "job.db-wal")
    (tmp_path / "sub").mkdir()
    return {
        "same name": "job.db",
        "another spelling": "sub/../job.db",
        "absolute": str(db),
        "symlink": "link.db",
        "hard link": "hard.db",
        "wal": "job.db-wal",
        "shared memory": "job.db-shm",
        "journal": "job.db-journal",
        "symlink to the wal": "wal-link",
    }


@pytest.mark.parametrize("command", [["export"], ["export", "--format", "graphml"], ["report"]])
def test_an_output_that_is_the_store_is_refused_and_the_job_kept(
    tmp_path: Path, command: list[str]
) -> None:
    url = _make_store(tmp_path / "job.db")
    names = _store_names(tmp_path)
    before = _digest(tmp_path / "job.db")
    for case, name in names.items():
        done = _run(_command(*command, "--store", url, "--output", name), tmp_path)
        assert done.code == 2, (case, done.err)
        line = done.error_line()
        assert "it is the store's file" in line, (case, line)
        assert _digest(tmp_path / "job.db") == before, case
        assert _results(tmp_path / "job.db") == USERS, case
    assert (tmp_path / "link.db").is_symlink()
    assert not list(tmp_path.glob(".*partial")), list(tmp_path.iterdir())
    for side in ("-wal", "-journal"):  # nothing written where SQLite would look
        path = tmp_path / f"job.db{side}"
        assert not path.exists() or path.stat().st_size == 0, side


# -- case 2: symlinks, FIFOs, devices ----------------------------------------------------


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    url = _make_store(tmp_path / "job.db")
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "friends.jsonl"
    target.write_text("old\n", encoding="utf-8")
    (tmp_path / "friends.jsonl").symlink_to(target)
    done = _run(_command("export", "--store", url, "--output", "friends.jsonl"), tmp_path)
    assert done.code == 0, done.err
    assert (tmp_path / "friends.jsonl").is_symlink()
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == USERS
    assert not list(tmp_path.rglob(".*partial"))
    # A dangling link: the file it names is made, beside where it points.
    # (Named .jsonl: JSON lines under a .csv name are refused since outputs' suffixes
    # must name the format written.)
    (tmp_path / "later.jsonl").symlink_to(tmp_path / "data" / "later.jsonl")
    done = _run(_command("export", "--store", url, "--output", "later.jsonl"), tmp_path)
    assert done.code == 0, done.err
    assert (tmp_path / "later.jsonl").is_symlink()
    assert len((tmp_path / "data" / "later.jsonl").read_text().splitlines()) == USERS


@pytest.mark.parametrize(
    "command", [["export"], ["export", "--format", "gexf"], ["export", "--format", "edges"]]
)
def test_a_fifo_is_written_as_tee_would(tmp_path: Path, command: list[str]) -> None:
    url = _make_store(tmp_path / "job.db")
    expected = _run(_command(*command, "--store", url), tmp_path)
    assert expected.code == 0, expected.err
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data, code = _read_fifo(
        fifo,
        lambda: subprocess.Popen(
            _command(*command, "--store", url, "--output", "pipe"),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    )
    assert code == 0
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert data == expected.out


def test_devices_are_written_not_replaced(tmp_path: Path) -> None:
    url = _make_store(tmp_path / "job.db")
    (tmp_path / "null").symlink_to(os.devnull)
    (tmp_path / "out").symlink_to("/dev/stdout")
    done = _run(_command("export", "--store", url, "--output", "null"), tmp_path)
    assert done.code == 0, done.err
    assert (tmp_path / "null").is_symlink()
    # --output /dev/stdout with stdout a pipe: the export comes down the pipe.
    expected = _run(_command("report", "--store", url), tmp_path).out
    done = _run(_command("report", "--store", url, "--output", "out"), tmp_path)
    assert done.code == 0, done.err
    assert (tmp_path / "out").is_symlink()
    assert done.out.startswith(b"<!DOCTYPE html>")
    assert len(done.out) == len(expected)
    assert not list(tmp_path.glob(".*partial"))


# -- case 3: folders, missing folders, existing files ------------------------------------


def test_folders_and_missing_folders_are_one_line(tmp_path: Path) -> None:
    url = _make_store(tmp_path / "job.db")
    (tmp_path / "folder").mkdir()
    (tmp_path / "to-folder").symlink_to(tmp_path / "folder")
    (tmp_path / "to-nowhere").symlink_to(tmp_path / "gone" / "file.csv")
    cases = {
        "folder": "it is a directory",
        "to-folder": "it is a directory",
        "missing/file.csv": "does not exist",
        "to-nowhere": "does not exist",
    }
    for name, says in cases.items():
        for command in (["export"], ["report"]):
            done = _run(_command(*command, "--store", url, "--output", name), tmp_path)
            assert done.code == 2, (name, done.err)
            assert says in done.error_line(), name
    assert (tmp_path / "to-nowhere").is_symlink()
    assert not (tmp_path / "gone").exists()
    assert _results(tmp_path / "job.db") == USERS


def test_an_existing_file_is_replaced_whole_and_keeps_its_permissions(tmp_path: Path) -> None:
    url = _make_store(tmp_path / "job.db")
    out = tmp_path / "private.csv"
    out.write_text("old contents\n", encoding="utf-8")
    out.chmod(0o600)
    done = _run(
        _command("export", "--store", url, "--format", "csv", "--output", "private.csv"), tmp_path
    )
    assert done.code == 0, done.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "user_id,screen_name,friend_name,friend_id,source"
    assert len(lines) == 1 + USERS * FRIENDS


# -- case 4: a full disk, a closed stdout --------------------------------------------------


@pytest.mark.parametrize("command", [["export"], ["export", "--format", "graphml"], ["report"]])
def test_a_full_disk_or_a_closed_stdout_is_one_line(tmp_path: Path, command: list[str]) -> None:
    url = _make_store(tmp_path / "job.db")
    args = _command(*command, "--store", url)
    with Path("/dev/full").open("wb") as full:
        done = _run(args, tmp_path, stdout=full)
    assert done.code == 2, done.err
    assert (
        done.error_line() == "friendscrape: error: cannot write to stdout: No space left on device"
    )
    closed = _run(["sh", "-c", 'exec "$0" "$@" >&-', *args], tmp_path, stdout=None)
    assert closed.code == 2, closed.err
    assert closed.error_line() == (
        "friendscrape: error: cannot write to stdout: it is closed (give --output FILE)"
    )
    (tmp_path / "full").symlink_to("/dev/full")
    done = _run([*args, "--output", "full"], tmp_path)
    assert done.code == 2, done.err
    assert done.error_line() == "friendscrape: error: cannot write 'full': No space left on device"
    assert (tmp_path / "full").is_symlink()
    assert _results(tmp_path / "job.db") == USERS


def _small_files() -> None:
    """In the child: files stop at 64 KiB (a write past it fails with EFBIG, as on a
    full disk, instead of the signal that would kill the process); room enough for the
    store's 32 KiB shared-memory file."""
    import resource  # noqa: PLC0415 - only in the child

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))


def test_a_file_that_cannot_be_finished_leaves_nothing_claiming_to_be_whole(
    tmp_path: Path,
) -> None:
    url = _make_store(tmp_path / "job.db", users=1000)  # an export of some 300 KB
    (tmp_path / "old.jsonl").write_text("the previous export\n", encoding="utf-8")
    for name in ("new.jsonl", "old.jsonl"):
        done = subprocess.run(
            _command("export", "--store", url, "--output", name),
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            timeout=120,
            check=False,
            preexec_fn=_small_files,  # a limit of the child only
        )
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert err.strip().splitlines() == [
            f"friendscrape: error: cannot write {name!r}: File too large"
        ]
    assert not (tmp_path / "new.jsonl").exists()
    assert (tmp_path / "old.jsonl").read_text() == "the previous export\n"
    assert not list(tmp_path.glob(".*partial"))


# -- case 5: XML from whatever the store holds ----------------------------------------------


def _check_graph(path: Path, fmt: str) -> None:
    ET.parse(path)  # noqa: S314 - our own file: well-formed, or ParseError
    graph = nx.read_graphml(path) if fmt == "graphml" else nx.read_gexf(path)
    assert graph.number_of_edges() == USERS * FRIENDS
    assert graph.number_of_nodes() >= USERS


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_xml_exports_are_well_formed_whatever_the_store_holds(tmp_path: Path, fmt: str) -> None:
    url = _make_store(tmp_path / "job.db", bad=True)
    with sqlite3.connect(tmp_path / "job.db") as conn:  # whatever an import let through
        conn.execute("UPDATE users SET screen_name = ? WHERE user_id = '2'", (f"two{BAD}",))
    done = _run(
        _command("export", "--store", url, "--format", fmt, "--output", f"g.{fmt}"), tmp_path
    )
    assert done.code == 0, done.err
    _check_graph(tmp_path / f"g.{fmt}", fmt)
    text = (tmp_path / f"g.{fmt}").read_text(encoding="utf-8")
    assert not any(ch in text for ch in BAD)
    assert "two\ufffd" in text
    streamed = _run(_command("export", "--store", url, "--format", fmt), tmp_path)
    assert streamed.code == 0, streamed.err
    assert streamed.out.decode() == text


@pytest.mark.bigquery
async def test_bigquery_exports_write_through_links_and_fail_in_one_line(
    bq_emulator: Any, bq_dataset: str, tmp_path: Path
) -> None:
    from storefixtures import bq_settings  # noqa: PLC0415

    settings = bq_settings(
        bq_emulator.endpoint, bq_dataset, bigquery_grpc_endpoint=bq_emulator.grpc_endpoint
    )
    async with opened_store(store_config(settings), create=True) as store:
        await _fill(store, bad=True)
    env = _env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=bq_emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=bq_emulator.grpc_endpoint,
    )
    args = _command("export", "--store", settings.store, "--format", "graphml")
    (tmp_path / "data").mkdir()
    (tmp_path / "g.graphml").symlink_to(tmp_path / "data" / "g.graphml")
    done = await asyncio.to_thread(_run, [*args, "--output", "g.graphml"], tmp_path, env=env)
    assert done.code == 0, done.err
    assert (tmp_path / "g.graphml").is_symlink()
    _check_graph(tmp_path / "data" / "g.graphml", "graphml")
    with Path("/dev/full").open("wb") as full:
        done = await asyncio.to_thread(_run, args, tmp_path, stdout=full, env=env)
    assert done.code == 2, done.err
    assert (
        done.error_line() == "friendscrape: error: cannot write to stdout: No space left on device"
    )


# -- case 6: a few large writes, whatever PYTHONUNBUFFERED says ------------------------------


def _stdout_writes(args: list[str], cwd: Path) -> tuple[int, bytes]:
    """How many write calls the command made to its stdout (a pipe), as strace saw them,
    and what it wrote."""
    log = cwd / "strace.log"
    done = _run(
        ["strace", "-f", "-e", "trace=write", "-o", str(log), *args],
        cwd,
        env=_env(PYTHONUNBUFFERED="1"),
    )
    assert done.code == 0, done.err
    calls = [line for line in log.read_text().splitlines() if "write(1," in line]
    return len(calls), done.out


@pytest.mark.skipif(shutil.which("strace") is None, reason="counts write calls with strace")
@pytest.mark.parametrize(
    "command",
    [["export"], ["export", "--format", "csv"], ["export", "--format", "edges"], ["report"]],
)
def test_stdout_is_written_in_large_blocks_under_pythonunbuffered(
    tmp_path: Path, command: list[str]
) -> None:
    url = _make_store(tmp_path / "job.db")
    probe = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    writes, out = _stdout_writes(_command(*command, "--store", url), tmp_path)
    assert out  # the whole export, in a few writes of up to 1 MiB
    assert writes <= 2 + len(out) // (1 << 20), writes


# -- every command that writes a file, against every kind of path ---------------------------


@dataclass(frozen=True)
class Writer:
    """A command line that writes an output file, ``{out}`` standing for its path."""

    args: tuple[str, ...]
    serves: bool = False  # runs until stopped (simulate): stopped once the file is written
    name: str = "out"  # the output's name in each case (its suffix may choose a compression)

    def line(self, url: str, out: str) -> list[str]:
        return [a.replace("{store}", url).replace("{out}", out) for a in self.args]


EXPORT_FORMATS = (
    ("--format", "jsonl"),
    ("--format", "csv"),
    ("--format", "edges", "--as", "csv"),
    ("--format", "edges", "--as", "jsonl"),
    ("--format", "edges", "--as", "parquet"),
    ("--format", "nodes", "--as", "csv"),
    ("--format", "nodes", "--as", "jsonl"),
    ("--format", "nodes", "--as", "parquet"),
    ("--format", "graphml"),
    ("--format", "gexf"),
)
OUT = ("--output", "{out}")
WRITERS: dict[tuple[str, str], list[Writer]] = {
    ("export", "--output"): [
        Writer(("export", "--store", "{store}", *fmt, "--output", "{out}"))
        for fmt in EXPORT_FORMATS
    ]
    + [
        # Compressed as they stream, by the output's suffix or --compress.
        Writer(("export", "--store", "{store}", "--output", "{out}"), name="out.jsonl.gz"),
        Writer(
            ("export", "--store", "{store}", "--format", "edges", "--output", "{out}"),
            name="out.csv.zst",
        ),
        Writer(("export", "--store", "{store}", "--format", "gexf", "--compress", "gzip", *OUT)),
    ],
    ("report", "--output"): [Writer(("report", "--store", "{store}", "--output", "{out}"))],
    ("simulate", "--write-users"): [
        Writer(
            (
                "simulate",
                "--port",
                "0",
                "--users",
                "30",
                "--latency",
                "0",
                "--write-users",
                "{out}",
            ),
            serves=True,
        )
    ],
}


def _file_options() -> Iterator[tuple[str, str]]:
    """(command, option) for every option of every command that names a file to write,
    read from the parsers themselves."""
    parsers: list[tuple[str, argparse.ArgumentParser]] = []
    for action in cli._build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers.extend(action.choices.items())
    parsers = [(n, simulate.build_parser() if n == "simulate" else p) for n, p in parsers]
    for name, parser in parsers:
        for action in parser._actions:
            # By name: the argument types' module may move, the type keeps its name.
            if getattr(action.type, "__name__", "") == argtypes.output_file.__name__:
                yield name, action.option_strings[-1]


def test_the_table_covers_every_command_that_writes_a_file() -> None:
    assert set(_file_options()) == set(WRITERS)


def _start(writer: Writer, url: str, out: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _command(*writer.line(url, out)),
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(writer: Writer, process: subprocess.Popen[bytes]) -> Done:
    """Wait for the command; a simulator is stopped once it says it serves (its users
    file is written before that) or has exited."""
    assert process.stderr is not None
    err: list[bytes] = []
    if writer.serves:
        for line in process.stderr:
            err.append(line)
            if b'"simulator.ready"' in line:
                process.send_signal(signal.SIGTERM)
                break
    err.extend(process.stderr.readlines())
    code = process.wait(timeout=120)
    process.stderr.close()
    return Done(code, b"", b"".join(err).decode())


def _check_written(writer: Writer, data: bytes) -> None:
    """Something was written, compressed as the writer asked (gzip's or zstd's magic)."""
    assert data, writer
    assert data != b"old", writer
    if writer.name.endswith(".gz") or "gzip" in writer.args:
        assert gzip.decompress(data), writer
    elif writer.name.endswith(".zst"):
        assert data[:4] == b"\x28\xb5\x2f\xfd", writer


def _cases_for(writer: Writer) -> list[str]:
    cases = ["symlink", "fifo", "directory", "missing folder", "existing file"]
    # simulate takes no store: there is no store of its to refuse.
    return cases if writer.serves else ["store", *cases]


def _writers() -> Iterator[Any]:
    for (command, _option), writers in WRITERS.items():
        for writer in writers:
            words = [a for a in writer.args if "{" not in a]
            if writer.name != "out":
                words.append(writer.name)
            yield pytest.param(writer, id=" ".join(words)[:60] or command)


@pytest.mark.parametrize("writer", list(_writers()))
def test_every_file_writer_against_every_kind_of_path(tmp_path: Path, writer: Writer) -> None:
    url = _make_store(tmp_path / "job.db")
    before = _digest(tmp_path / "job.db")
    (tmp_path / "folder").mkdir()
    (tmp_path / "data").mkdir()
    for case in _cases_for(writer):
        here = tmp_path / case.replace(" ", "-")
        here.mkdir()
        if case == "store":
            done = _finish(writer, _start(writer, url, str(tmp_path / "job.db"), here))
            assert done.code == 2, (case, done.err)
            assert "it is the store's file" in done.error_line()
        elif case == "symlink":
            target = here / "real" / writer.name
            target.parent.mkdir()
            (here / writer.name).symlink_to(target)
            done = _finish(writer, _start(writer, url, writer.name, here))
            assert done.code == 0, (case, done.err)
            assert (here / writer.name).is_symlink()
            _check_written(writer, target.read_bytes())
        elif case == "fifo":
            os.mkfifo(here / writer.name)
            data, code = _read_fifo(
                here / writer.name,
                lambda h=here: _start(writer, url, writer.name, h),
                lambda p: _finish(writer, p).code,
            )
            assert code == 0, case
            assert stat.S_ISFIFO((here / writer.name).lstat().st_mode)
            _check_written(writer, data)
        elif case == "directory":
            done = _finish(writer, _start(writer, url, str(tmp_path / "folder"), here))
            assert done.code == 2, (case, done.err)
            assert "it is a directory" in done.error_line()
        elif case == "missing folder":
            done = _finish(writer, _start(writer, url, f"gone/{writer.name}", here))
            assert done.code == 2, (case, done.err)
            assert "does not exist" in done.error_line()
            assert not (here / "gone").exists()
        else:
            (here / writer.name).write_bytes(b"old")
            done = _finish(writer, _start(writer, url, writer.name, here))
            assert done.code == 0, (case, done.err)
            _check_written(writer, (here / writer.name).read_bytes())
        assert not list(here.rglob(".*partial")), case
        # The store still opens, holds every result, and was never written.
        assert _results(tmp_path / "job.db") == USERS, case
        assert _digest(tmp_path / "job.db") == before, case
