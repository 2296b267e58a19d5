"""Opening a command's output (``--output FILE``, or stdout) safely: one place for every
command that writes a file (export, report, simulate --write-users).

What a path names decides how it is written:

- a regular file, or no file yet: a temporary ``.NAME.partial`` beside it, renamed into
  place only when complete (a failed write leaves the old file, never a partial one);
- a symlink: the same, beside the file the link leads to (the link stays a link);
- a FIFO or a device (``/dev/null``, ``/dev/stdout``): opened and written as ``tee``
  would, never replaced by a file;
- the store itself (its SQLite file, journal, WAL or shared-memory file, by any name or
  link): refused before anything is opened for writing.

Every writer is buffered by us (1 MiB), whatever PYTHONUNBUFFERED says about stdout, so
an export makes a few large writes, not one per row. Failures (a full disk, a closed
stdout) are one line (UsageError), with no partial file left claiming to be whole.

A writer may compress what it is given (``compress``: gzip or zstd) as it streams, a
megabyte at a time: the file (or stdout) holds one gzip member, or zstd frames, that any
reader of the format takes whole. Which compression an output gets is the caller's
choice: ``compression`` reads it from the output's suffix (``.gz``, ``.zst``) or an
explicit option.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from friendscrape.errors import UsageError

BUFFER = 1 << 20
"""Bytes gathered before each write: a few writes per megabyte of export."""

COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
"""The suffixes that name a compressed output, and the compression each names."""
GZIP_LEVEL = 1
"""Level 1 compresses an edge table 2.5 times as fast as gzip's default 6 (70 against
28 MB/s), to a file an eighth larger (5.7 against 6.4 times smaller; measured on an
export of 5.5 million edges): at 6, compressing, not reading the store, is what an
export would wait on."""
ZSTD_LEVEL = 1
"""zstd's fastest: 5 times as fast as gzip's level 1 on the same table, and smaller."""

SQLITE_PREFIX = "sqlite:///"
_STORE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def store_files(store_url: str) -> list[Path]:
    """The files of a SQLite store (``sqlite:///PATH``: PATH and its journal, WAL and
    shared-memory files) that no output may be; none for another store (BigQuery)."""
    if not store_url.startswith(SQLITE_PREFIX) or len(store_url) == len(SQLITE_PREFIX):
        return []
    path = store_url[len(SQLITE_PREFIX) :]
    return [Path(path + side) for side in _STORE_SIDE_FILES]


@dataclass(frozen=True, slots=True)
class Target:
    """Where an output goes: ``path`` (symlinks followed), written in place when
    ``through`` (a FIFO or device), else through a temporary file renamed over it."""

    given: Path
    path: Path
    through: bool
    mode: int | None  # permissions of the file replaced, kept on the new one


def _cannot(path: Path, why: str) -> UsageError:
    return UsageError(f"cannot write {str(path)!r}: {why}")


def _same_file(output: Path, protected: Path) -> bool:
    try:
        return output.samefile(protected)
    except OSError:  # one of them does not exist (yet): compare where they lead
        return os.path.realpath(output) == os.path.realpath(protected)


def target(path: Path, *, refuse: Sequence[Path] = ()) -> Target:
    """Where ``path`` is to be written, or a UsageError (one line) saying why it cannot
    be: a folder, a missing folder, one of the files in ``refuse`` (the store's)."""
    for protected in refuse:
        if _same_file(path, protected):
            msg = (
                f"cannot write {str(path)!r}: it is the store's file {str(protected)!r}; "
                "choose another --output"
            )
            raise UsageError(msg)
    try:
        info = path.stat()  # follows symlinks: what the path leads to
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _cannot(path, exc.strerror or str(exc)) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise _cannot(path, "it is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode):
        return Target(path, path, through=True, mode=None)
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        raise _cannot(path, f"folder {str(real.parent)!r} does not exist")
    mode = stat.S_IMODE(info.st_mode) if info is not None else None
    return Target(path, real, through=False, mode=mode)


def check_stdout() -> None:
    """Refuse (one line) an output to stdout when stdout is closed (``>&-``)."""
    if sys.stdout is None:
        msg = "cannot write to stdout: it is closed (give --output FILE)"
        raise UsageError(msg)


def check(path: Path | None, *, refuse: Sequence[Path] = (), compress: str | None = None) -> None:
    """The checks of ``opened``, made before any work (before the store is opened)."""
    if compress is not None:
        compressor(compress)
    if path is None:
        check_stdout()
    else:
        target(path, refuse=refuse)


def compression(path: Path | None, asked: str | None) -> str | None:
    """The compression of an output: ``asked`` (gzip, zstd, or none), else the one the
    output's suffix names (``.gz``, ``.zst``), else none. An ``asked`` that contradicts
    the suffix is refused (one line): a file named ``.gz`` holds gzip."""
    named = COMPRESSIONS.get(path.suffix.lower()) if path is not None else None
    if asked is None:
        return named
    wanted = None if asked == "none" else asked
    if named is not None and named != wanted:
        msg = (
            f"--compress {asked} contradicts --output {str(path)!r}, which names a {named} "
            "file: change the suffix, or leave --compress out"
        )
        raise UsageError(msg)
    return wanted


def without_compression(path: Path | None) -> Path | None:
    """``path`` without the suffix naming its compression (``edges.csv.gz``:
    ``edges.csv``), for whatever reads the format from the suffix before it."""
    if path is not None and path.suffix.lower() in COMPRESSIONS:
        return path.with_suffix("")
    return path


def suffix_of(path: Path | None) -> str:
    """The suffix naming ``path``'s format, lower case and without its dot, and without
    the one naming its compression (``edges.CSV.gz``: ``csv``); empty when it has none."""
    plain = without_compression(path)
    return plain.suffix.lower().lstrip(".") if plain is not None else ""


def check_suffix(
    path: Path | None, writes: str, suffixes: Sequence[str], option: str, flag: str = "--output"
) -> None:
    """Refuse (one line) an output whose suffix names another format than the one
    written: ``report --output r.xlsx`` would write HTML under a name that says
    otherwise. ``writes``: what is written (``report writes HTML``), under ``suffixes``;
    no suffix is fine. ``option`` says the format explicitly, which skips this check
    (its caller's part); ``flag`` names the path's option."""
    suffix = suffix_of(path)
    if suffix and suffix not in suffixes:
        names = ", ".join(f".{each}" for each in suffixes)
        msg = (
            f"{flag} {str(path)!r}: {writes} ({names}), not .{suffix}: "
            f"name the file so, or say the format with {option}"
        )
        raise UsageError(msg)


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


class _Frames:
    """zstd through pyarrow: each block its own frame (a reader takes them in turn as
    one stream; a megabyte a frame costs next to nothing in size)."""

    def __init__(self, codec: Any) -> None:
        self._codec = codec

    def compress(self, data: bytes, /) -> bytes:
        return bytes(self._codec.compress(data, asbytes=True)) if data else b""

    def flush(self) -> bytes:
        return b""


def compressor(kind: str) -> _Compressor:
    """A streaming compressor of ``kind`` (gzip, zstd), or one line saying what zstd
    needs: Python 3.14's compression.zstd, or pyarrow (the parquet extra)."""
    if kind == "gzip":
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if kind != "zstd":
        msg = f"unknown compression {kind!r}: choose gzip or zstd"
        raise UsageError(msg)
    try:
        zstd = importlib.import_module("compression.zstd")
    except ImportError:
        pass
    else:
        made: _Compressor = zstd.ZstdCompressor(level=ZSTD_LEVEL)
        return made
    try:
        pa = importlib.import_module("pyarrow")
    except ImportError:
        msg = "zstd output needs pyarrow: pip install 'friendscrape[parquet]' (or write .gz)"
        raise UsageError(msg) from None
    return _Frames(pa.Codec("zstd", compression_level=ZSTD_LEVEL))


class _Descriptor(io.RawIOBase):
    """An open file descriptor as a raw stream. After a failed write it takes bytes and
    drops them, so closing the buffer above it does not raise (or warn) a second time."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        if self._failed:
            return len(memoryview(data))
        try:
            return os.write(self._fd, data)
        except OSError:
            self._failed = True
            raise


class _Compressing(io.RawIOBase):
    """Bytes compressed on their way to ``sink``, a block (of up to BUFFER bytes) at a
    time; ``finish`` writes the end of the stream (gzip's checksum and length)."""

    def __init__(self, sink: Any, packer: _Compressor) -> None:
        super().__init__()
        self._sink = sink
        self._packer = packer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        self._send(self._packer.compress(bytes(data)))
        return size

    def finish(self) -> None:
        self._send(self._packer.flush())

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a pipe may take part of a write
            view = view[self._sink.write(view) :]


@dataclass(frozen=True, slots=True)
class _Chain:
    """A writer (text or bytes) and, when it compresses, the stream to finish."""

    out: IO[Any]
    packed: _Compressing | None

    def complete(self) -> None:
        """Write what is buffered, then the compressed stream's end."""
        self.out.flush()
        if self.packed is not None:
            self.packed.finish()


def _writer(raw: Any, *, binary: bool, packer: _Compressor | None = None) -> _Chain:
    packed = _Compressing(raw, packer) if packer is not None else None
    buffered = io.BufferedWriter(packed or raw, buffer_size=BUFFER)
    if binary:
        return _Chain(buffered, packed)
    text = io.TextIOWrapper(buffered, encoding="utf-8", newline="", write_through=False)
    return _Chain(text, packed)


def _close(out: IO[Any]) -> None:
    """Close a writer whose data was flushed, or is being given up on: an error here
    would only hide the one that ended the writing."""
    with suppress(OSError):
        out.close()


@contextmanager
def _stdout(*, binary: bool, packer: _Compressor | None) -> Iterator[IO[Any]]:
    check_stdout()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # Not a real stream (a test's capture): write to it as it is.
        if packer is None:
            yield sys.stdout.buffer if binary else sys.stdout
            return
        captured = _writer(sys.stdout.buffer, binary=binary, packer=packer)
        yield captured.out
        captured.complete()
        sys.stdout.buffer.flush()
        return
    sys.stdout.flush()
    chain = _writer(_Descriptor(fd), binary=binary, packer=packer)
    try:
        yield chain.out
        chain.complete()
    except BrokenPipeError:
        raise  # the reader went away: the CLI ends quietly (exit 141)
    except OSError as exc:
        msg = f"cannot write to stdout: {exc.strerror or exc}"
        raise UsageError(msg) from None
    finally:
        _close(chain.out)


def _open_new(path: Path, mode: int | None) -> int:
    """A new file at ``path`` (never through a link or over a file left there)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    if mode is not None:
        os.fchmod(fd, mode)
    return fd


@contextmanager
def opened(
    path: Path | None,
    *,
    binary: bool = False,
    refuse: Sequence[Path] = (),
    compress: str | None = None,
) -> Iterator[Any]:  # a TextIO, or a BinaryIO when ``binary``
    """A buffered writer to ``path`` (stdout when None), text (UTF-8) or ``binary``,
    compressed with ``compress`` (gzip, zstd) when given. A regular file appears only
    complete; ``refuse``: files the output must not be."""
    packer = compressor(compress) if compress is not None else None
    if path is None:
        with _stdout(binary=binary, packer=packer) as out:
            yield out
        return
    where = target(path, refuse=refuse)
    tmp = where.path.with_name(f".{where.path.name}.partial")
    try:
        if where.through:
            fd = os.open(where.path, os.O_WRONLY | os.O_CLOEXEC)
        else:
            fd = _open_new(tmp, where.mode)
    except OSError as exc:
        raise _cannot(path, exc.strerror or str(exc)) from None
    chain = _writer(_Descriptor(fd), binary=binary, packer=packer)
    try:
        yield chain.out
        chain.complete()
        if not where.through:
            tmp.replace(where.path)
    except OSError as exc:
        # A full disk mid-export: one line, and no partial file left behind.
        raise _cannot(path, exc.strerror or str(exc)) from None
    finally:
        _close(chain.out)
        os.close(fd)
        if not where.through:
            tmp.unlink(missing_ok=True)
