"""The history of runs: one line each (parameters, seed, time) with Restore, newest first.

One widget model for the whole list, paginated in the browser. Thumbnails of this session's
runs live in the result gallery (stored once). Runs of earlier sessions (read back from the
runs folder) have small thumbnails the browser asks for when it draws their rows: they are
never part of the model's state, so a notebook saved with widget state does not carry them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import traitlets

from ..schema import FluxLoraInput, ImageSize, InputError, validate_input
from ._thumbs import ThumbnailWidget, static_text
from .records import RunRecord

__all__ = [
    "HistoryList",
    "HistoryView",
    "PastJob",
    "past_jobs",
    "restore_values",
    "summary",
]

PAST_JOBS = 40
"""How many finished jobs of earlier sessions the history shows (newest first)."""
PAST_THUMB_SIDE = 64
"""Longer side of a past job's history thumbnail (small: it is stored in the notebook)."""


@dataclass(frozen=True)
class PastJob:
    """A finished job read back from the runs folder: what the history shows and restores."""

    entry_id: str
    text: str
    params: FluxLoraInput
    when: float
    thumbnail: bytes | None
    files: tuple[Path, ...]


def past_jobs(root: str | Path | None = None, limit: int = PAST_JOBS) -> list[PastJob]:
    """Finished jobs under the runs folder, newest first, each with a small thumbnail.

    Reads files only (blocking: call it in a thread). Unreadable runs, jobs whose input no
    longer validates and missing image files are skipped, never raised.
    """
    from .. import images
    from ..store.runs import list_runs

    found: list[PastJob] = []
    for run in list_runs(root):
        for order, record in reversed(list(enumerate(run.records()))):
            if len(found) >= limit:
                return found
            if not record.done or not record.images:
                continue
            try:
                params = validate_input(record.reuse_input())
            except InputError:
                continue
            files = tuple(run.path / image.file for image in record.images)
            thumb = None
            with contextlib.suppress(OSError, ValueError):
                thumb = images.thumbnail(files[0].read_bytes(), max_side=PAST_THUMB_SIDE)
            title = f"{run.name} {record.job_id}"
            text = input_summary(params, record.seed, len(files), title)
            found.append(
                PastJob(
                    f"past-{run.name}-{record.job_id}",
                    text,
                    params,
                    run.created + order / 1000,
                    thumb,
                    files,
                )
            )
    return found


def summary(record: RunRecord) -> str:
    """One line per run: number, prompt, size, steps, guidance, seed, LoRAs, time."""
    return input_summary(
        record.params, record.seed, len(record.images), f"#{record.number}", record.elapsed
    )


def input_summary(
    params: FluxLoraInput,
    seed: int | None,
    count: int,
    title: str,
    elapsed: float | None = None,
) -> str:
    """``#3 · seed 42 · 'a fox' · landscape_4_3 · 28 steps · guidance 3.5 · 2 images · 6.1 s``."""
    prompt = params.prompt if len(params.prompt) <= 60 else params.prompt[:59] + "…"
    size = params.image_size
    size_text = f"{size.width}×{size.height}" if isinstance(size, ImageSize) else size
    parts = [  # the seed early: it is what a row is most often looked up by
        title,
        "random seed" if seed is None else f"seed {seed}",
        repr(prompt),
        str(size_text),
        f"{params.num_inference_steps} steps",
        f"guidance {params.guidance_scale:g}",
    ]
    if params.loras:
        parts.append(", ".join(f"{lora.path} ×{lora.scale:g}" for lora in params.loras))
    parts.append(f"{count} image" + ("" if count == 1 else "s"))
    if elapsed is not None:
        parts.append(f"{elapsed:.1f} s")
    return " · ".join(parts)


def restore_values(record: RunRecord) -> FluxLoraInput:
    """The run's input with the seed the server used, so Generate makes the same images."""
    if record.seed is None:
        return record.params
    return record.params.model_copy(update={"seed": record.seed})


class HistoryList(ThumbnailWidget):
    """Runs as one-line entries with Restore, newest first, paginated, in one model."""

    _esm = static_text("thumbs.js") + static_text("history.js")
    _css = static_text("thumbs.css") + static_text("history.css")
    page_size = traitlets.Int(20).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._restore: Callable[[str], None] | None = None
        self._lazy: dict[str, bytes] = {}
        self._on("restore", self._restore_asked)
        self._on("thumb", self._thumb_asked)

    def add(
        self,
        entry_id: str,
        text: str,
        thumbnail: bytes | None = None,
        when: float | None = None,
        *,
        lazy: bool = False,
    ) -> None:
        """Add an entry; the browser lists entries by `when` (epoch seconds), newest first.

        A `lazy` thumbnail stays in Python: the browser asks for it when it draws the row and
        keeps it outside the model's state, so saved notebooks do not carry it.
        """
        stamp = time.time() if when is None else when
        entry = {"id": entry_id, "text": text, "when": f"{stamp:.3f}"}
        if lazy and thumbnail:
            self._lazy[entry_id] = bytes(thumbnail)
            self._add_entry({**entry, "lazy": "yes"})
        else:
            self._add_entry(entry, thumbnail)

    def _thumb_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        data = self._lazy.get(entry_id)
        if data is None:
            self.send({"kind": "thumb", "id": entry_id, "ok": False}, [])
        else:
            self.send({"kind": "thumb", "id": entry_id, "ok": True}, [data])

    def on_restore(self, callback: Callable[[str], None]) -> None:
        """`callback(entry_id)` when Restore is clicked."""
        self._restore = callback

    def _restore_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        if self._restore is not None and self.has_entry(entry_id):
            self._restore(entry_id)


class HistoryView:
    """The panel's history: records by id, newest first; Restore puts one into the form."""

    def __init__(
        self,
        on_restore: Callable[[RunRecord], None],
        on_restore_params: Callable[[FluxLoraInput], None] | None = None,
    ) -> None:
        self.records: list[RunRecord] = []
        self.past: list[PastJob] = []
        self._by_id: dict[str, RunRecord] = {}
        self._past_by_id: dict[str, PastJob] = {}
        self._on_restore = on_restore
        self._on_restore_params = on_restore_params
        self.list = HistoryList()
        self.list.on_restore(self.restore)
        self.box = self.list

    def add(self, record: RunRecord, thumbnail: bytes | None = None) -> str:
        """Add a run; returns its entry id."""
        entry_id = f"run-{record.number}-{record.request_id}"
        self.records.insert(0, record)
        self._by_id[entry_id] = record
        self.list.add(entry_id, summary(record), thumbnail)
        return entry_id

    def add_past(self, jobs: list[PastJob]) -> None:
        """Add jobs of earlier sessions (read from the runs folder) below this session's."""
        for job in jobs:
            if job.entry_id in self._past_by_id:
                continue
            self.past.append(job)
            self._past_by_id[job.entry_id] = job
            self.list.add(job.entry_id, job.text, job.thumbnail, when=job.when, lazy=True)

    def restore(self, entry_id: str) -> None:
        """Put the run's parameters into the form (what the Restore button does)."""
        record = self._by_id.get(entry_id)
        if record is not None:
            self._on_restore(record)
            return
        past = self._past_by_id.get(entry_id)
        if past is not None and self._on_restore_params is not None:
            self._on_restore_params(past.params)

    def close(self) -> None:
        """Close the list."""
        self.list.close()
