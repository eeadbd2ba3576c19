"""The runs folder: one folder per run, files that never overwrite, a manifest, past runs.

A run folder holds ``manifest.json`` (the run's kind, its definition and one row per job: a
`JobRecord`), ``journal.jsonl`` (every job event, appended and fsynced: the truth about request
ids after a crash) and the images, named ``<job id>-<index>.<ext>`` from our own ids only — a
string from a server is never part of a path. The default root is ``./fluxwidget-runs/``
(``$FLUXWIDGET_RUNS`` or an argument changes it), as Automatic1111 keeps ``outputs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..client.journal import Journal
from ..errors import RunFolderError
from .records import FINAL_STATES, JobRecord, SavedImage

__all__ = [
    "MANIFEST",
    "Run",
    "RunFolderError",
    "default_runs_root",
    "list_runs",
]

MANIFEST = "manifest.json"
MANIFEST_INTERVAL = 0.25
"""Seconds between two rewrites of a busy run's manifest (the journal is durable meanwhile)."""
JOURNAL = "journal.jsonl"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EXTENSIONS = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp"}


def default_runs_root() -> Path:
    """``$FLUXWIDGET_RUNS``, else ``./fluxwidget-runs``."""
    return Path(os.environ.get("FLUXWIDGET_RUNS") or "fluxwidget-runs").expanduser()


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _dump_atomically(path: Path, manifest: dict[str, Any]) -> None:
    """Serialise a manifest (one line per job) and write it atomically."""
    head = {key: value for key, value in manifest.items() if key != "jobs"}
    rows = ",\n  ".join(json.dumps(row, default=str) for row in manifest["jobs"])
    text = json.dumps(head, default=str)[:-1] + (', "jobs": [\n  ' + rows + "\n]}\n")
    _write_atomically(path, text)


def _apply_event(jobs: dict[str, JobRecord], event: dict[str, Any]) -> None:
    """Fold one journal event into the job it names (the journal beats a stale manifest)."""
    job_id = event.get("job_id")
    if not isinstance(job_id, str) or job_id not in jobs:
        return
    record = jobs[job_id]
    kind = event.get("event")
    if record.state in FINAL_STATES and kind != "saved":
        return
    if kind == "submitting" and record.request_id is None:
        record.state = "submitting"
    elif kind == "submitted" and event.get("request_id"):
        record.request_id = str(event["request_id"])
        if record.state in ("pending", "submitting", "unknown", "error"):
            record.state, record.error, record.final = "queued", None, False
    elif kind == "completed":
        urls = event.get("image_urls")
        if isinstance(urls, list):
            record.image_urls = [str(url) for url in urls]
        if isinstance(event.get("seed"), int):
            record.seed = event["seed"]
        if record.state != "done":
            record.state = "fetching"
    elif kind == "saved":
        record.state = "done"
        files = event.get("images")
        if isinstance(files, list):
            record.images = [SavedImage.from_json(item) for item in files if isinstance(item, dict)]
    elif kind == "failed":
        record.state = "error"
        record.error = str(event.get("error") or "failed")
        record.final = bool(event.get("final", True))
    elif kind == "cancelled":
        record.state = "cancelled"
    elif kind == "not_sent" and record.request_id is None:  # a refused submit, to send again
        record.state, record.error, record.final = "pending", None, False


class Run:
    """One run folder and its jobs. Create with `Run.create`, open with `Run.open`."""

    def __init__(
        self,
        path: Path,
        *,
        kind: str,
        created: float,
        definition: dict[str, Any] | None = None,
        jobs: Iterable[JobRecord] = (),
    ) -> None:
        self.path = path
        self.kind = kind
        self.created = created
        self.definition = definition
        self.jobs: dict[str, JobRecord] = {job.job_id: job for job in jobs}
        self.journal = Journal(path / JOURNAL)
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None
        self._resting = False

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, kind={self.kind!r}, jobs={len(self.jobs)})"

    # --- creating and opening ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | Path | None = None,
        *,
        kind: str = "generate",
        definition: dict[str, Any] | None = None,
        path: str | Path | None = None,
    ) -> Run:
        """A new run folder: at `path` (which must not be a run folder yet), else a fresh
        ``<root>/<date>-<time>-<kind>[-N]`` that no other run uses."""
        if path is not None:
            folder = Path(path)
            if (folder / MANIFEST).exists():
                raise RunFolderError(f"{folder} is already a run folder")
            folder.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(root) if root is not None else default_runs_root()
            base.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for attempt in range(1000):
                folder = base / (f"{stamp}-{kind}" + (f"-{attempt + 1}" if attempt else ""))
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
            else:  # pragma: no cover - a thousand runs in one second
                raise RunFolderError(f"no free run folder name under {base}")
        run = cls(folder, kind=kind, created=time.time(), definition=definition)
        run.save()
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Read a run folder: its manifest, then its journal on top (a crash may have left the
        manifest behind the journal). Jobs left active by a stopped process are marked as such:
        a submit in flight becomes ``unknown`` (it may have been billed)."""
        folder = Path(path)
        manifest = folder / MANIFEST
        if not manifest.exists():
            raise RunFolderError(f"{folder} is not a run folder (no {MANIFEST})")
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            jobs = [JobRecord.from_json(row) for row in data.get("jobs", [])]
        except (ValueError, TypeError, AttributeError) as exc:
            raise RunFolderError(f"{manifest} is unreadable: {exc}") from None
        run = cls(
            folder,
            kind=str(data.get("kind", "generate")),
            created=float(data.get("created", 0.0)),
            definition=data.get("definition"),
            jobs=jobs,
        )
        for event in run.journal.records():
            _apply_event(run.jobs, event)
        for record in run.jobs.values():
            if record.state == "submitting":
                record.state = "unknown"
                record.error = (
                    "a submit was in flight when the run stopped: the server may have accepted "
                    "(and billed) it; check your fal request history before submitting it again"
                )
        return run

    @classmethod
    def open_or_create(
        cls, path: str | Path, *, kind: str, definition: dict[str, Any] | None = None
    ) -> Run:
        """Open the run folder at `path`, or create it there."""
        folder = Path(path)
        if (folder / MANIFEST).exists():
            return cls.open(folder)
        return cls.create(kind=kind, definition=definition, path=folder)

    # --- jobs -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The folder's name (what the embedded records call the run)."""
        return self.path.name

    def new_job_id(self, prefix: str = "j") -> str:
        """The next free job id: ``j0001``, ``j0002``, ..."""
        number = len(self.jobs) + 1
        while f"{prefix}{number:04d}" in self.jobs:
            number += 1
        return f"{prefix}{number:04d}"

    def add(self, record: JobRecord) -> JobRecord:
        """Add a job (its id must be new and safe as a file-name part)."""
        if not _SAFE_ID.match(record.job_id):
            raise ValueError(f"job id {record.job_id!r} is not a safe file-name part")
        if record.job_id in self.jobs:
            raise ValueError(f"job id {record.job_id!r} is already in {self.path}")
        self.jobs[record.job_id] = record
        self.changed()
        return record

    def image_path(self, job_id: str, index: int, content_type: str | None, data: bytes) -> Path:
        """A new file for image `index` of a job, reserved so nothing is ever overwritten."""
        if not _SAFE_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} is not a safe file-name part")
        ext = _extension(content_type, data)
        for attempt in range(1000):
            suffix = f"-{attempt}" if attempt else ""
            candidate = self.path / f"{job_id}-{index}{suffix}.{ext}"
            try:
                fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            return candidate
        raise RunFolderError(f"no free file name for {job_id}-{index} in {self.path}")

    def records(self) -> list[JobRecord]:
        """Every job, in the order they were added."""
        return list(self.jobs.values())

    # --- the manifest -----------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict: kind, definition, one row per job."""
        return {
            "fluxwidget_run": 1,
            "kind": self.kind,
            "created": self.created,
            "definition": self.definition,
            "jobs": [record.to_json() for record in self.jobs.values()],
        }

    def save(self) -> None:
        """Write the manifest now (atomically)."""
        self._dirty = False
        _dump_atomically(self.path / MANIFEST, self.manifest())

    def changed(self) -> None:
        """Note a change: on a running loop the manifest is rewritten soon, in a thread, with
        writes coalesced (at most one per `MANIFEST_INTERVAL` while changes keep coming);
        without a loop it is written at once."""
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_while_dirty())

    async def _write_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            snapshot = self.manifest()  # copied on the loop, serialised and written off it
            await asyncio.to_thread(_dump_atomically, self.path / MANIFEST, snapshot)
            if self._dirty:  # changes keep coming: gather them for a moment, then write once
                self._resting = True
                try:
                    await asyncio.sleep(MANIFEST_INTERVAL)
                finally:
                    self._resting = False

    async def flush(self) -> None:
        """Wait until the manifest on disk has every change made so far."""
        while self._writer is not None and not self._writer.done():
            if self._resting:  # it only waits to gather changes: write them now instead
                self._writer.cancel()
            writer = self._writer
            try:
                await asyncio.shield(writer)
            except asyncio.CancelledError:
                if not writer.cancelled():
                    raise  # this flush itself was cancelled
            except Exception:  # a failed write: the next one (below) says so
                pass
        if self._dirty:
            await asyncio.to_thread(self.save)

    # --- the journal ------------------------------------------------------------------------

    async def log(self, event: str, record: JobRecord, **fields: Any) -> None:
        """Append a job event to the run's journal durably before returning."""
        await self.journal.write(event, record.request_id or "", job_id=record.job_id, **fields)

    def active(self) -> list[JobRecord]:
        """Jobs that were submitted and are not finished (to collect on resume)."""
        return [record for record in self.jobs.values() if record.collectable]


def _extension(content_type: str | None, data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:2] == b"\xff\xd8":
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    subtype = (content_type or "").split("/")[-1].split(";")[0].strip().lower()
    return _EXTENSIONS.get(subtype, "bin")


def list_runs(root: str | Path | None = None) -> list[Run]:
    """The run folders under `root` (default `default_runs_root`), newest first; folders that
    are not readable run folders are skipped."""
    base = Path(root) if root is not None else default_runs_root()
    if not base.is_dir():
        return []
    runs = []
    for child in base.iterdir():
        if (child / MANIFEST).is_file():
            with contextlib.suppress(RunFolderError, OSError):
                runs.append(Run.open(child))
    runs.sort(key=lambda run: (run.created, run.name), reverse=True)
    return runs
