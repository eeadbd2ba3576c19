"""Files written so that a crash or a full disk never leaves half a file under a final name.

- `write_atomically`: a temporary file beside the target, fsynced, renamed over it; the
  directory fsynced too. A reader sees the old file or the new one, never half. Files get the
  user's umask (a temporary file from `tempfile` would be 0600).
- `append_line`: one whole line in one ``write`` (``O_APPEND``); a torn last line left by a
  crash is ended first, so nothing is ever appended onto it; a write that fails half way is cut
  back, so the file never ends in a torn line of ours.
- Every failure is a `StorageError` naming the path (a `DiskFullError` with the free space
  when the disk or the quota is full), never a bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path

from .errors import DiskFullError, StorageError

__all__ = ["append_line", "free_bytes", "storage_error", "write_atomically"]

_FULL = {errno.ENOSPC, errno.EDQUOT}


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system of `path` (or its nearest existing parent), if known."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def storage_error(exc: OSError, path: Path, doing: str) -> StorageError:
    """Our typed error for an OSError met while `doing` something to `path`."""
    if exc.errno in _FULL:
        free = free_bytes(path)
        left = f" ({free:,} bytes free)" if free is not None else ""
        return DiskFullError(
            f"the disk is full: could not {doing} {path}{left}; free some space and run the "
            "same command again (nothing already saved is lost)",
            path=path,
            free_bytes=free,
        )
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"could not {doing} {path}: {reason}", path=path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open directories: the rename still stands
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (see the module's docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise storage_error(exc, path, "write") from None
    _fsync_dir(path.parent)


def append_line(path: Path, line: bytes) -> None:
    """Append whole lines (`line` ends with a newline) in one write, fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise storage_error(exc, path, "open") from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # end the torn line a crash left: never append onto it
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # no torn line of ours is left behind
            raise storage_error(exc, path, "append to") from None
    finally:
        os.close(fd)
