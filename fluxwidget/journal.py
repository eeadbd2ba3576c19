"""An append-only journal of submitted requests, so a paid image is never lost.

Every accepted submit is written (and fsynced) here before anything waits on the job; its end
(result fetched, cancelled, failed) is appended later. A failure with ``final: false`` (a 5xx or
a dropped connection on the result call) is not an end: the job can still be collected.
`pending()` lists the jobs whose result was never fetched, so they can be recovered by request
id. The key is never written.

`append_soon` hands a record to a background writer (one thread per process) instead: the client
uses it for ``completed``, which need not be durable before the result is returned — if it is
lost in a crash, the job is merely listed as pending and recovery fetches its result again.
Reading the journal (`records`, `pending`) first waits for the records handed over so far.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Journal", "default_journal_path"]

log = logging.getLogger("fluxwidget.journal")

_TERMINAL = {"completed", "cancelled", "failed", "moved"}  # moved: into a run folder


def default_journal_path() -> Path:
    """``$FLUXWIDGET_JOURNAL``, else ``$XDG_CACHE_HOME/fluxwidget/requests.jsonl``."""
    configured = os.environ.get("FLUXWIDGET_JOURNAL")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fluxwidget" / "requests.jsonl"


class _Writer:
    """The background writer of `Journal.append_soon`: a daemon thread and a queue."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Journal, str]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, journal: Journal, line: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fluxwidget-journal", daemon=True
                )
                self._thread.start()
        self._queue.put((journal, line))

    def _run(self) -> None:
        while True:
            journal, line = self._queue.get()
            try:
                journal._write(line)
            except OSError as exc:  # nothing to raise to: the job stays pending, recoverable
                log.warning("could not write to the journal %s: %s", journal.path, exc)
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> bool:
        return self._queue.unfinished_tasks > 0

    def flush(self) -> None:
        """Wait until every record handed over so far is written."""
        if self.pending:
            self._queue.join()


_writer = _Writer()
atexit.register(_writer.flush)


class Journal:
    """A JSONL file of request events: ``submitted`` then ``completed``/``cancelled``/``failed``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @staticmethod
    def _line(event: str, request_id: str, fields: dict[str, Any]) -> str:
        record = {"event": event, "request_id": request_id, "time": time.time(), **fields}
        return json.dumps(record, default=str) + "\n"

    def append(self, event: str, request_id: str, **fields: Any) -> None:
        """Append one event durably (written and fsynced before returning)."""
        self._write(self._line(event, request_id, fields))

    def append_soon(self, event: str, request_id: str, **fields: Any) -> None:
        """Append one event from the background writer (returns at once; see the module doc)."""
        _writer.put(self, self._line(event, request_id, fields))

    @staticmethod
    def flush() -> None:
        """Wait until every `append_soon` record so far is written (blocks: call it in a
        thread from async code)."""
        _writer.flush()

    @staticmethod
    def has_unwritten() -> bool:
        """Whether `append_soon` records are still on their way to disk."""
        return _writer.pending

    def _write(self, line: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every record in order; a torn last line (a crash mid-write) is skipped."""
        _writer.flush()
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def pending(self) -> list[dict[str, Any]]:
        """The ``submitted`` records of jobs with no terminal event yet, oldest first."""
        submitted: dict[str, dict[str, Any]] = {}
        for record in self.records():
            rid = str(record.get("request_id") or "")
            if record.get("event") == "submitted" and rid:
                submitted[rid] = record
            elif record.get("event") in _TERMINAL and record.get("final", True):
                submitted.pop(rid, None)
        return list(submitted.values())
