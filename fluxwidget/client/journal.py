"""An append-only journal of submitted requests, so a paid image is never lost.

Every accepted submit is written (and fsynced) here before anything waits on the job; its end
(result fetched, cancelled, failed) is appended later. A failure with ``final: false`` (a 5xx or
a dropped connection on the result call) is not an end: the job can still be collected.
`pending()` lists the jobs whose result was never fetched, so they can be recovered by request
id. The key is never written.

All writes go through one writer thread per process, which appends lines in order and fsyncs
once per batch (group commit). `append` (blocking) and `write` (async) return once their line is
on disk. `append_soon` returns at once: the client uses it for ``completed``, which need not be
durable before the result is returned — if it is lost in a crash, the job is merely listed as
pending and recovery fetches its result again. Reading the journal (`records`, `pending`) first
waits for the lines handed over so far.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

from ..disk import append_line, storage_error

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
    """The journal's writer thread (one per process). Lines are written in the order they were
    handed over, and each batch waiting when the thread wakes costs one fsync per file (group
    commit): concurrent durable appends share their fsyncs, and none waits behind other work
    in asyncio's default thread pool (image saves, manifest writes)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Journal, str, Future[None] | None]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0

    def put(self, journal: Journal, line: str, done: Future[None] | None = None) -> None:
        """Queue `line`; `done` (if given) gets its outcome once the line is on disk."""
        with self._lock:
            self._unfinished += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fluxwidget-journal", daemon=True
                )
                self._thread.start()
        self._queue.put((journal, line, done))

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_journal: dict[Journal, list[tuple[str, Future[None] | None]]] = {}
            for journal, line, done in batch:
                by_journal.setdefault(journal, []).append((line, done))
            for journal, items in by_journal.items():
                error: Exception | None = None
                try:
                    journal._write_lines([line for line, _done in items])
                except Exception as exc:  # any failure reaches its waiters; the thread goes on
                    error = exc
                for _line, done in items:
                    _settle(done, error, journal)
            with self._idle:
                self._unfinished -= len(batch)
                if self._unfinished == 0:
                    self._idle.notify_all()

    @property
    def pending(self) -> bool:
        with self._lock:
            return self._unfinished > 0

    def flush(self) -> None:
        """Wait until every line handed over so far is written."""
        with self._idle:
            self._idle.wait_for(lambda: self._unfinished == 0)


def _settle(done: Future[None] | None, error: Exception | None, journal: Journal) -> None:
    """Tell a durable append's waiter how its write went (nobody waits for `append_soon`)."""
    if done is None:
        if error is not None:  # nothing to raise to: the job stays pending, recoverable
            log.warning("could not write to the journal %s: %s", journal.path, error)
        return
    try:
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
    except InvalidStateError:  # the waiter was cancelled; the line is written all the same
        pass


_writer = _Writer()
atexit.register(_writer.flush)


class Journal:
    """A JSONL file of request events: ``submitted`` then ``completed``/``cancelled``/``failed``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self.problems: list[str] = []
        """The unreadable lines the last `records()` skipped, as ``file:line: why``."""

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @staticmethod
    def _line(event: str, request_id: str, fields: dict[str, Any]) -> str:
        record = {"event": event, "request_id": request_id, "time": time.time(), **fields}
        return json.dumps(record, default=str) + "\n"

    def append(self, event: str, request_id: str, **fields: Any) -> None:
        """Append one event durably (written and fsynced before returning; blocks)."""
        done: Future[None] = Future()
        _writer.put(self, self._line(event, request_id, fields), done)
        done.result()

    async def write(self, event: str, request_id: str, **fields: Any) -> None:
        """Append one event durably: returns once it is written and fsynced (the writer thread
        does the work; events written at the same time share one fsync)."""
        done: Future[None] = Future()
        _writer.put(self, self._line(event, request_id, fields), done)
        await asyncio.wrap_future(done)

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

    def _write_lines(self, lines: list[str]) -> None:
        """Append `lines` in one write and fsync once (called by the writer thread only): whole
        lines, never onto a torn one, cut back when the disk is full (`disk.append_line`)."""
        append_line(self.path, "".join(lines).encode("utf-8"))

    def records(self) -> list[dict[str, Any]]:
        """Every readable record in order. A torn last line (a crash mid-write) is skipped
        quietly; any other unreadable line is skipped with a warning naming the file and the
        line (`problems` lists them), so one bad byte never blocks a resume."""
        _writer.flush()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise storage_error(exc, self.path, "read") from None
        out: list[dict[str, Any]] = []
        self.problems = []
        lines = data.split(b"\n")
        torn_tail = not data.endswith(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
                if torn_tail and number == len(lines):
                    continue  # the line a crash left half written
                problem = f"{self.path}:{number}: unreadable record skipped ({exc})"
                self.problems.append(problem)
                log.warning("%s", problem)
                continue
            out.append(record)
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
