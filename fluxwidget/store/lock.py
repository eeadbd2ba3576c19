"""One writer per run folder: an exclusive lock on ``<run>/.lock`` (filelock's flock).

A second process — or a second run object in this one — that wants to write the folder is
refused at once with who holds it (pid, host, since when, command), read from
``<run>/.lock.owner``. The operating system drops the lock when its process dies, however
it dies, so a lock left by a crash never blocks anyone.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..disk import write_atomically
from ..errors import RunFolderBusy

__all__ = ["LOCK_FILE", "OWNER_FILE", "RunLock"]

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process (it did not say which)"
    since = owner.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    text = f"process {owner.get('pid', '?')} on {owner.get('host', '?')} since {when}"
    if owner.get("command"):
        text += f" ({owner['command']})"
    return text


OWNER_WAIT_SECONDS = 2.0
"""How long a refused claim waits for the holder to say who it is."""


def _is_alive(owner: dict[str, Any]) -> bool:
    """Whether `owner` names a process that runs now (on another host: assume it does)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


_HELD: weakref.WeakValueDictionary[str, RunLock] = weakref.WeakValueDictionary()
"""The locks this process holds, by resolved folder (so a second writer in this process can
reuse the holder's lock instead of being refused: `RunLock.held_here`)."""


def _key(folder: Path) -> str:
    try:
        return str(folder.resolve())
    except OSError:  # pragma: no cover - an unreadable path
        return str(folder.absolute())


class RunLock:
    """The write lock of one run folder, held by one `Run` (idempotent `claim`)."""

    @staticmethod
    def held_here(folder: str | os.PathLike[str]) -> RunLock | None:
        """The lock of `folder` this process holds (a `Run` writing it), if any."""
        lock = _HELD.get(_key(Path(folder)))
        return lock if lock is not None and lock.held else None

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def owner(self) -> dict[str, Any]:
        """Who holds (or last held) the lock, as its holder wrote it."""
        try:
            data = json.loads((self.folder / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _current_owner(self, within: float = OWNER_WAIT_SECONDS) -> dict[str, Any]:
        """The holder's owner record, waiting briefly for it: the holder writes it just
        after taking the lock, so a claim refused in between would otherwise read nothing
        (or the record of the holder before it)."""
        deadline = time.monotonic() + within
        while True:
            owner = self.owner()
            if _is_alive(owner) or time.monotonic() >= deadline:
                return owner
            time.sleep(0.02)

    def claim(self) -> None:
        """Take the lock, or raise `RunFolderBusy` at once saying who has it."""
        if self.held:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            owner = self._current_owner()
            raise RunFolderBusy(
                f"{self.folder} is being written by {_describe(owner)}: one writer at a time, "
                "so nothing is submitted twice. Wait for it to finish (or stop it), then run "
                "again to resume.",
                owner=owner,
            ) from None
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
            "command": " ".join(os.path.basename(arg) for arg in sys.argv[:3]),
        }
        write_atomically(self.folder / OWNER_FILE, json.dumps(owner).encode())
        _HELD[_key(self.folder)] = self

    def release(self) -> None:
        """Let the folder go (a no-op when not held)."""
        if self.held:
            self._lock.release(force=True)
            if _HELD.get(_key(self.folder)) is self:
                del _HELD[_key(self.folder)]
