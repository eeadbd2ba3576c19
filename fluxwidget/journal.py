"""An append-only journal of submitted requests, so a paid image is never lost.

Every accepted submit is written (and fsynced) here before anything waits on the job; its end
(result fetched, cancelled, failed) is appended later. A failure with ``final: false`` (a 5xx or
a dropped connection on the result call) is not an end: the job can still be collected.
`pending()` lists the jobs whose result was never fetched, so they can be recovered by request
id. The key is never written.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Journal", "default_journal_path"]

_TERMINAL = {"completed", "cancelled", "failed", "moved"}  # moved: into a run folder


def default_journal_path() -> Path:
    """``$FLUXWIDGET_JOURNAL``, else ``$XDG_CACHE_HOME/fluxwidget/requests.jsonl``."""
    configured = os.environ.get("FLUXWIDGET_JOURNAL")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fluxwidget" / "requests.jsonl"


class Journal:
    """A JSONL file of request events: ``submitted`` then ``completed``/``cancelled``/``failed``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def append(self, event: str, request_id: str, **fields: Any) -> None:
        """Append one event durably (written and fsynced before returning)."""
        record = {"event": event, "request_id": request_id, "time": time.time(), **fields}
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        """Every record in order; a torn last line (a crash mid-write) is skipped."""
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
