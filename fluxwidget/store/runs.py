"""The runs folder: one folder per run, one writer at a time, the journal as the truth.

A run folder holds ``journal.jsonl`` (the run's header, every job as it was planned and every
job event, appended whole-line and fsynced: the truth), ``manifest.json`` (derived from it: the
run's kind, definition, server and one row per job, rebuilt from the journal when it is missing
or unreadable) and the images, named ``<job id>-<index>.<ext>`` from our own ids only — a
string from a server is never part of a path — each complete under its name or not there. A
writer claims the folder (`Run.claim`, `RunLock`); readers need no lock. The default root is
``./fluxwidget-runs/`` (``$FLUXWIDGET_RUNS`` or an argument changes it), as Automatic1111 keeps
``outputs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import images
from ..client.journal import Journal
from ..disk import write_atomically
from ..errors import RunFolderError, StorageError
from .lock import RunLock
from .records import FINAL_STATES, KNOWN_STATES, JobRecord, SavedImage

log = logging.getLogger("fluxwidget.runs")

__all__ = [
    "JOURNAL",
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


def _dump_atomically(path: Path, manifest: dict[str, Any]) -> None:
    """Serialise a manifest (one line per job) and write it atomically."""
    head = {key: value for key, value in manifest.items() if key != "jobs"}
    rows = ",\n  ".join(json.dumps(row, default=str) for row in manifest["jobs"])
    text = json.dumps(head, default=str)[:-1] + (', "jobs": [\n  ' + rows + "\n]}\n")
    write_atomically(path, text.encode("utf-8"))


def _apply_event(jobs: dict[str, JobRecord], event: dict[str, Any]) -> None:
    """Fold one journal event into the job it names (the journal beats a stale manifest)."""
    job_id = event.get("job_id")
    if not isinstance(job_id, str) or job_id not in jobs:
        return
    record = jobs[job_id]
    kind = event.get("event")
    if record.state in FINAL_STATES and kind != "saved":
        return
    if kind == "planned":
        return  # how the job was added: read by `_jobs_from_journal`
    if kind == "submitting" and record.request_id is None:
        record.state = "submitting"
        uploads = event.get("uploads")
        if isinstance(uploads, dict):
            record.uploads = {str(k): str(v) for k, v in uploads.items()}
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
        server: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.created = created
        self.definition = definition
        self.server: dict[str, str] = dict(server or {})
        """Where the run's jobs were sent (``base_url``, ``auth_scheme``; never the key):
        resume and `recover` go back there."""
        self.jobs: dict[str, JobRecord] = {job.job_id: job for job in jobs}
        self.journal = Journal(path / JOURNAL)
        self.lock = RunLock(path)
        self.rebuilt = False
        """True when the manifest was missing or unreadable and was rebuilt from the journal."""
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
        claim: bool = False,
    ) -> Run:
        """A new run folder: at `path` (which must not be a run folder yet), else a fresh
        ``<root>/<date>-<time>-<kind>[-N]`` that no other run uses. `claim` takes the write
        lock before anything is written (`RunFolderBusy` when another writer has it)."""
        lock: RunLock | None = None
        if path is not None:
            folder = Path(path)
            folder.mkdir(parents=True, exist_ok=True)
            if claim:
                lock = RunLock(folder)
                lock.claim()
            if cls.is_run_folder(folder):
                if lock is not None:
                    lock.release()
                raise RunFolderError(f"{folder} is already a run folder")
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
        if lock is not None:
            run.lock = lock
        elif claim:
            run.claim()
        run.journal.append("run", "", kind=kind, created=run.created, definition=definition)
        run.save()
        return run

    @staticmethod
    def is_run_folder(path: str | Path) -> bool:
        """Whether `path` holds a run (its manifest, or a journal to rebuild it from)."""
        folder = Path(path)
        return (folder / MANIFEST).is_file() or (folder / JOURNAL).is_file()

    @classmethod
    def open(cls, path: str | Path, *, claim: bool = False) -> Run:
        """Read a run folder: its manifest with its journal folded on top (a crash may have left
        the manifest behind), or the journal alone when the manifest is missing or unreadable.
        Jobs left active by a stopped process are marked as such: a submit in flight becomes
        ``unknown`` (it may have been billed); a done job whose files are gone is collected
        again. `claim` takes the write lock first, so what is read is what this writer owns."""
        folder = Path(path)
        lock = RunLock(folder)
        if claim:
            if not cls.is_run_folder(folder):
                raise RunFolderError(f"{folder} is not a run folder (no {MANIFEST})")
            lock.claim()
        try:
            run = cls._read(folder)
        except BaseException:
            lock.release()
            raise
        run.lock = lock
        if claim:
            _clear_stale_temps(folder)
        return run

    @classmethod
    def _read(cls, folder: Path) -> Run:
        manifest = folder / MANIFEST
        journal = Journal(folder / JOURNAL)
        events = journal.records()
        header = next((e for e in events if e.get("event") == "run"), None)
        data, problem = _read_manifest(manifest)
        if data is None and header is None:
            if problem is None:
                raise RunFolderError(f"{folder} is not a run folder (no {MANIFEST})")
            raise RunFolderError(
                f"{manifest} is unreadable ({problem}) and {JOURNAL} cannot "
                "rebuild it (it was written by an older fluxwidget)"
            )
        source = data if data is not None else header or {}
        run = cls(
            folder,
            kind=str(source.get("kind", "generate")),
            created=_number(source.get("created")),
            definition=source.get("definition")
            if isinstance(source.get("definition"), dict)
            else None,
            jobs=data["jobs"] if data is not None else [],
            server=_server(source.get("server")),
        )
        run.rebuilt = data is None
        for job in _jobs_from_journal(events):  # planned after the manifest was written
            run.jobs.setdefault(job.job_id, job)
        for event in events:
            _apply_event(run.jobs, event)
            if event.get("event") == "server":
                run.server = _server(event.get("server")) or run.server
        for record in run.jobs.values():
            if record.state == "submitting":
                record.state = "unknown"
                record.error = (
                    "a submit was in flight when the run stopped: the server may have accepted "
                    "(and billed) it; check your fal request history before submitting it again"
                )
            elif record.state == "done" and not run.images_on_disk(record):
                record.state = "fetching" if record.image_urls else "queued"
                record.detail = "Its images are not all on disk: collecting them again"
        if run.rebuilt:
            run._dirty = True
        return run

    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        *,
        kind: str,
        definition: dict[str, Any] | None = None,
        claim: bool = False,
    ) -> Run:
        """Open the run folder at `path`, or create it there."""
        folder = Path(path)
        if cls.is_run_folder(folder):
            return cls.open(folder, claim=claim)
        return cls.create(kind=kind, definition=definition, path=folder, claim=claim)

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
        self.journal.append_soon("planned", "", job_id=record.job_id, job=record.to_json())
        self.changed()
        return record

    # --- the writer -------------------------------------------------------------------------

    def claim(self) -> None:
        """Become the folder's one writer (`RunFolderBusy` at once when another has it). As
        the only writer, it clears the temporary files a killed writer left half written."""
        if self.lock.held:
            return
        self.lock.claim()
        _clear_stale_temps(self.path)

    def release(self) -> None:
        """Stop being the folder's writer (after the last change is on disk)."""
        self.lock.release()

    def remember_server(self, base_url: str, auth_scheme: str) -> None:
        """Note where jobs are sent (never the key), for resume and `recover`."""
        server = {"base_url": base_url, "auth_scheme": auth_scheme}
        if server != self.server:
            self.server = server
            self.journal.append_soon("server", "", server=server)
            self.changed()

    def image_path(self, job_id: str, index: int, content_type: str | None, data: bytes) -> Path:
        """The file of image `index` of a job: ``<job id>-<index>.<ext>``, written atomically
        (so an earlier, unfinished attempt never leaves a second file beside it)."""
        if not _SAFE_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} is not a safe file-name part")
        return self.path / f"{job_id}-{index}.{_extension(content_type, data)}"

    def saved_image(self, record: JobRecord, index: int) -> Path | None:
        """A complete file of image `index` already on disk for this job's request, if any
        (resume reuses it instead of downloading again)."""
        for candidate in sorted(self.path.glob(f"{record.job_id}-{index}.*")):
            if candidate.suffix == ".tmp" or not candidate.is_file():
                continue
            if image_file_complete(candidate, record.request_id):
                return candidate
        return None

    def images_on_disk(self, record: JobRecord) -> bool:
        """Whether every image a done job saved is still there (exists, not empty)."""
        if not record.images:
            return False
        for image in record.images:
            try:
                if (self.path / image.file).stat().st_size == 0:
                    return False
            except OSError:
                return False
        return True

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
            "server": self.server,
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
            try:
                await asyncio.to_thread(_dump_atomically, self.path / MANIFEST, snapshot)
            except StorageError as exc:  # the journal holds the truth; flush() says it again
                self._dirty = True
                log.warning("%s", exc)
                return
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


def _clear_stale_temps(folder: Path) -> None:
    """Remove the temporary files a killed writer left (only the folder's writer calls it)."""
    for stale in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _server(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v for k, v in value.items() if k in ("base_url", "auth_scheme") and isinstance(v, str)
    }


def _read_manifest(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest's head and its jobs, or (None, why not) — None, None when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, str(exc)
    if not isinstance(data, dict) or not isinstance(data.get("jobs", []), list):
        return None, "not a fluxwidget manifest"
    jobs = []
    for number, row in enumerate(data.get("jobs", []), start=1):
        problem = _row_problem(row)
        if problem is not None:
            return None, f"job {number}: {problem}"
        jobs.append(JobRecord.from_json(row))
    return {**data, "jobs": jobs}, None


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "not an object"
    if not isinstance(row.get("job_id"), str) or not _SAFE_ID.match(row["job_id"]):
        return "no valid job_id"
    if not isinstance(row.get("input"), dict):
        return "no input object"
    if row.get("state", "pending") not in KNOWN_STATES:
        return f"unknown state {row.get('state')!r}"
    if not isinstance(row.get("images", []), list):
        return "images is not a list"
    return None


def _jobs_from_journal(events: list[dict[str, Any]]) -> list[JobRecord]:
    """The jobs as they were planned (``planned`` events), in order."""
    jobs = []
    for event in events:
        job = event.get("job")
        if event.get("event") == "planned" and isinstance(job, dict) and _row_problem(job) is None:
            jobs.append(JobRecord.from_json(job))
    return jobs


def image_file_complete(path: Path, request_id: str | None) -> bool:
    """Whether `path` is a whole image of ours: not empty, decodable, and (when known) made by
    `request_id` (its embedded record says so)."""
    try:
        if path.stat().st_size == 0:
            return False
        data = path.read_bytes()
        images.check_complete(data)
        embedded = images.metadata_of(data)
    except Exception:  # unreadable, truncated, not an image: not complete
        return False
    if request_id is None:
        return True
    return isinstance(embedded, dict) and embedded.get("request_id") == request_id


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
