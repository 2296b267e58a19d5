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
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from friendscrape.errors import UsageError

BUFFER = 1 << 20
"""Bytes gathered before each write: a few writes per megabyte of export."""

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


def check(path: Path | None, *, refuse: Sequence[Path] = ()) -> None:
    """The checks of ``opened``, made before any work (before the store is opened)."""
    if path is None:
        check_stdout()
    else:
        target(path, refuse=refuse)


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


def _writer(raw: io.RawIOBase, *, binary: bool) -> IO[Any]:
    buffered = io.BufferedWriter(raw, buffer_size=BUFFER)
    if binary:
        return buffered
    return io.TextIOWrapper(buffered, encoding="utf-8", newline="", write_through=False)


def _close(out: IO[Any]) -> None:
    """Close a writer whose data was flushed, or is being given up on: an error here
    would only hide the one that ended the writing."""
    with suppress(OSError):
        out.close()


@contextmanager
def _stdout(*, binary: bool) -> Iterator[IO[Any]]:
    check_stdout()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # Not a real stream (a test's capture): write to it as it is.
        yield sys.stdout.buffer if binary else sys.stdout
        return
    sys.stdout.flush()
    out = _writer(_Descriptor(fd), binary=binary)
    try:
        yield out
        out.flush()
    except BrokenPipeError:
        raise  # the reader went away: the CLI ends quietly (exit 141)
    except OSError as exc:
        msg = f"cannot write to stdout: {exc.strerror or exc}"
        raise UsageError(msg) from None
    finally:
        _close(out)


def _open_new(path: Path, mode: int | None) -> int:
    """A new file at ``path`` (never through a link or over a file left there)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    if mode is not None:
        os.fchmod(fd, mode)
    return fd


@contextmanager
def opened(
    path: Path | None, *, binary: bool = False, refuse: Sequence[Path] = ()
) -> Iterator[Any]:  # a TextIO, or a BinaryIO when ``binary``
    """A buffered writer to ``path`` (stdout when None), text (UTF-8) or ``binary``.
    A regular file appears only complete; ``refuse``: files the output must not be."""
    if path is None:
        with _stdout(binary=binary) as out:
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
    raw = _Descriptor(fd)
    out = _writer(raw, binary=binary)
    try:
        yield out
        out.flush()
        if not where.through:
            tmp.replace(where.path)
    except OSError as exc:
        # A full disk mid-export: one line, and no partial file left behind.
        raise _cannot(path, exc.strerror or str(exc)) from None
    finally:
        _close(out)
        os.close(fd)
        if not where.through:
            tmp.unlink(missing_ok=True)
