"""The history: one row per run, newest first, with Restore.

One widget model for the whole list, paginated in the browser. This session's runs (each
Generate) are one row each; their thumbnails live in the result gallery (stored once). Earlier
sessions are read back from the runs folder, one row per run folder (a panel session or a sweep)
with its job count, main parameters (a sweep's axes) and one small thumbnail. A row expands to
its jobs (a sweep's cells with their axis values), each with Restore. An earlier run's jobs and
every thumbnail of earlier runs are sent only when the browser asks for them (the row is drawn,
expanded): they are never part of the model's state, so a saved notebook does not carry them.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import traitlets

from ..schema import FluxLoraInput, ImageSize, InputError, validate_input
from ..store.records import JobRecord
from ..store.runs import Run
from ..sweeps.ranges import format_value
from ._thumbs import ThumbnailWidget, static_text
from .records import RunRecord

__all__ = [
    "PAST_RUNS",
    "HistoryItem",
    "HistoryList",
    "HistoryView",
    "PastJob",
    "PastRun",
    "past_runs",
    "restore_values",
    "summary",
]

PAST_RUNS = 50
"""How many run folders of earlier sessions the history shows (newest first)."""
PAST_THUMB_SIDE = 64
"""Longer side of an earlier run's (or job's) history thumbnail, made when the browser asks."""
TEXT_LIMIT = 240
"""Longest line of an earlier run (characters): the saved state holds one per run."""
GRID_FILE = "grid.jpg"
"""A sweep's exported grid: its thumbnail stands for the sweep's row when it exists."""

Thumbnail = Callable[[], bytes | None]
"""Makes a thumbnail when the browser asks for it (None when there is none)."""


def _image_thumbnail(path: Path | None) -> bytes | None:
    """A small JPEG of an image file, or None when it is missing or unreadable."""
    if path is None:
        return None
    from .. import images

    with contextlib.suppress(OSError, ValueError):
        return images.thumbnail(path.read_bytes(), max_side=PAST_THUMB_SIDE)
    return None


@dataclass(frozen=True)
class PastJob:
    """One job of an earlier run (read from its folder): shown when its run is expanded."""

    entry_id: str
    record: JobRecord = field(repr=False)
    files: tuple[Path, ...]

    @cached_property
    def params(self) -> FluxLoraInput | None:
        """The job's input with the seed the server used (None when it no longer validates)."""
        try:
            return validate_input(self.record.reuse_input())
        except InputError:
            return None

    @property
    def axes(self) -> dict[str, Any]:
        """A sweep cell's axis values (label → value); empty for a panel job."""
        return dict(self.record.axes)

    @property
    def detail(self) -> str:
        """A sweep cell's axis values as ``guidance=3.5, steps=20`` (empty for a panel job)."""
        return ", ".join(f"{label}={format_value(v)}" for label, v in self.record.axes.items())

    @property
    def text(self) -> str:
        """``j0002 · seed 42 · 'a fox' · 1024×768 · 28 steps · guidance 3.5 · 2 images``."""
        params = self.params
        if params is None:
            return f"{self.record.job_id} · input no longer valid"
        text = input_summary(params, self.record.seed, len(self.files), self.record.job_id)
        return text if self.record.done else f"{text} · {self.record.state}"

    def thumbnail(self) -> bytes | None:
        """A small thumbnail of the job's first image (read now; None without one)."""
        return _image_thumbnail(self.files[0] if self.files else None)


@dataclass(frozen=True)
class PastRun:
    """A run folder of an earlier session (a panel session or a sweep): one history row."""

    entry_id: str
    name: str
    kind: str
    when: float
    text: str
    jobs: tuple[PastJob, ...]
    """A panel run's jobs newest first; a sweep's cells in grid order."""
    cover: Path | None = None
    """The image its thumbnail is made from (a sweep's grid, else a job's first image)."""

    @property
    def image_count(self) -> int:
        """How many images of the run are on disk."""
        return sum(len(job.files) for job in self.jobs)

    def thumbnail(self) -> bytes | None:
        """A small thumbnail of the run (read now; None without an image)."""
        return _image_thumbnail(self.cover)


def past_runs(root: str | Path | None = None, limit: int = PAST_RUNS) -> list[PastRun]:
    """The run folders under `root`, newest first, at most `limit`, one `PastRun` each.

    Reads manifests only (blocking: call it in a thread); thumbnails and job lines are made
    later, when asked for. Unreadable folders and runs without a valid job are skipped.
    """
    from ..store.runs import list_runs

    found: list[PastRun] = []
    for run in list_runs(root):
        if len(found) >= limit:
            break
        past = _past_run(run)
        if past is not None:
            found.append(past)
    return found


def _past_run(run: Run) -> PastRun | None:
    """One run folder as a history row, or None when none of its jobs validates."""
    records = run.records()
    sweep = run.kind == "sweep"
    ordered = records if sweep else list(reversed(records))
    jobs = tuple(
        PastJob(
            f"past-{run.name}-{record.job_id}",
            record,
            tuple(run.path / image.file for image in record.images) if record.done else (),
        )
        for record in ordered
    )
    base = _sweep_base(run) if sweep else None
    if base is None:
        base = next((job.params for job in jobs if job.params is not None), None)
    if base is None:
        return None
    done = sum(job.record.done for job in jobs)
    images = sum(len(job.files) for job in jobs)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created))
    if sweep:
        axes = _sweep_axes(run)
        count = f"{len(jobs)} cells, {done} done"
        swept = {name for name, _label, _n in axes}
        parts = [when, "sweep", " × ".join(f"{label} ({n})" for _, label, n in axes) or "no axes"]
    else:
        count = f"{len(jobs)} job" + ("" if len(jobs) == 1 else "s")
        if done < len(jobs):
            count += f", {done} done"
        swept = set()
        parts = [when, run.kind]
    parts += [count, f"{images} image" + ("" if images == 1 else "s")]
    parts += _main_parameters(base, [job.record.input for job in jobs], swept)
    text = " · ".join(parts)
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    grid = run.path / GRID_FILE
    cover = grid if sweep and grid.is_file() else None
    if cover is None:
        cover = next((job.files[0] for job in jobs if job.files), None)
    return PastRun(f"past-{run.name}", run.name, run.kind, run.created, text, jobs, cover)


def _sweep_definition(run: Run) -> dict[str, Any]:
    stored = (run.definition or {}).get("sweep")
    return stored if isinstance(stored, dict) else {}


def _sweep_base(run: Run) -> FluxLoraInput | None:
    """The base input a sweep's cells vary (None when its definition has none that validates)."""
    base = _sweep_definition(run).get("base")
    if not isinstance(base, dict):
        return None
    try:
        return validate_input(base)
    except InputError:
        return None


def _sweep_axes(run: Run) -> list[tuple[str, str, int]]:
    """A sweep's axes as (field, label, number of values), X first."""
    axes = _sweep_definition(run).get("axes")
    found = []
    for name in ("x", "y", "z"):
        axis = axes.get(name) if isinstance(axes, dict) else None
        if isinstance(axis, dict) and isinstance(axis.get("values"), list):
            name_ = str(axis.get("field", name))
            label = str(axis.get("label") or name_)
            found.append((name_, label, len(axis["values"])))
    return found


def _main_parameters(
    base: FluxLoraInput, inputs: Iterable[dict[str, Any]], swept: set[str]
) -> list[str]:
    """Prompt start, size, steps and guidance of `base`; a value the jobs differ in (a panel
    session's) is said as such; fields a sweep's axes vary are left out (the axes name them)."""
    raw = list(inputs)

    def varied(name: str) -> list[Any]:
        values = []
        for payload in raw:
            value = payload.get(name)
            if value is not None and value not in values:
                values.append(value)
        return values if len(values) > 1 else []

    parts: list[str] = []
    if "prompt" not in swept and "prompt_sr" not in swept:
        prompts = varied("prompt")
        prompt = base.prompt if len(base.prompt) <= 40 else base.prompt[:39] + "…"
        parts.append(repr(prompt) + (f" (+{len(prompts) - 1} more)" if prompts else ""))
    if "image_size" not in swept:
        sizes = varied("image_size")
        size = base.image_size
        shown = f"{size.width}×{size.height}" if isinstance(size, ImageSize) else str(size)
        parts.append(f"{len(sizes)} sizes" if sizes else shown)
    for name, unit in (("num_inference_steps", "{} steps"), ("guidance_scale", "guidance {}")):
        if name in swept:
            continue
        numbers = [v for v in varied(name) if isinstance(v, (int, float))]
        if numbers:
            parts.append(unit.format(f"{min(numbers):g}–{max(numbers):g}"))
        else:
            parts.append(unit.format(f"{getattr(base, name):g}"))
    return parts


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


@dataclass(frozen=True)
class HistoryItem:
    """One job of a grouped row (an earlier run), sent when the row is first expanded."""

    entry_id: str
    text: str
    detail: str = ""
    """A sweep cell's axis values (shown before its line)."""
    thumbnail: Thumbnail | None = None


class HistoryList(ThumbnailWidget):
    """Rows with Restore, newest first, paginated, in one model; a group row (an earlier run)
    expands to its jobs, which the browser asks for (like its thumbnails) outside the state."""

    _esm = static_text("thumbs.js") + static_text("history.js")
    _css = static_text("thumbs.css") + static_text("history.css")
    page_size = traitlets.Int(20).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._restore: Callable[[str], None] | None = None
        self._lazy: dict[str, bytes | Thumbnail] = {}
        self._groups: dict[str, Callable[[], list[HistoryItem]]] = {}
        self._items: dict[str, list[HistoryItem]] = {}
        self._item_ids: set[str] = set()
        self._on("restore", self._restore_asked)
        self._on("thumb", self._thumb_asked)
        self._on("jobs", self._jobs_asked)

    def add(
        self,
        entry_id: str,
        text: str,
        thumbnail: bytes | Thumbnail | None = None,
        when: float | None = None,
        *,
        lazy: bool = False,
    ) -> None:
        """Add a row; the browser lists rows by `when` (epoch seconds), newest first.

        A `lazy` thumbnail (bytes, or a function making them) stays in Python: the browser asks
        for it when it draws the row and keeps it outside the model's state.
        """
        stamp = time.time() if when is None else when
        entry = {"id": entry_id, "text": text, "when": f"{stamp:.3f}"}
        if lazy and thumbnail:
            self._lazy[entry_id] = thumbnail
            self._add_entry({**entry, "lazy": "yes"})
        else:
            self._add_entry(entry, thumbnail if isinstance(thumbnail, bytes) else None)

    def add_group(
        self,
        entry_id: str,
        text: str,
        *,
        when: float,
        count: int,
        items: Callable[[], list[HistoryItem]],
        thumbnail: Thumbnail | None = None,
    ) -> None:
        """Add a row of `count` jobs that expands; `items()` makes them when first asked for."""
        self._groups[entry_id] = items
        entry = {"id": entry_id, "text": text, "when": f"{when:.3f}", "group": str(count)}
        if thumbnail is not None:
            self._lazy[entry_id] = thumbnail
            entry["lazy"] = "yes"
        self._add_entry(entry)

    def items(self, entry_id: str) -> list[HistoryItem]:
        """A group row's jobs (made once; their thumbnails and Restore work from then on)."""
        made = self._items.get(entry_id)
        if made is None:
            make = self._groups.get(entry_id)
            made = make() if make is not None else []
            self._items[entry_id] = made
            for item in made:
                self._item_ids.add(item.entry_id)
                if item.thumbnail is not None:
                    self._lazy[item.entry_id] = item.thumbnail
        return made

    def thumbnail(self, entry_id: str) -> bytes | None:
        """The lazy thumbnail of a row or job (made once, when first asked for)."""
        source = self._lazy.get(entry_id)
        if source is None or isinstance(source, bytes):
            return source
        data: bytes | None = None
        with contextlib.suppress(Exception):  # a broken image must not break the history
            data = source()
        if data:
            self._lazy[entry_id] = data
        else:
            del self._lazy[entry_id]
        return data

    def _jobs_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        if entry_id not in self._groups:
            self.send({"kind": "jobs", "id": entry_id, "ok": False, "jobs": []}, [])
            return
        jobs = [
            {
                "id": item.entry_id,
                "text": item.text,
                "detail": item.detail,
                "lazy": "yes" if item.thumbnail is not None else "",
            }
            for item in self.items(entry_id)
        ]
        self.send({"kind": "jobs", "id": entry_id, "ok": True, "jobs": jobs}, [])

    def _thumb_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        data = self.thumbnail(entry_id)
        if data is None:
            self.send({"kind": "thumb", "id": entry_id, "ok": False}, [])
        else:
            self.send({"kind": "thumb", "id": entry_id, "ok": True}, [data])

    def on_restore(self, callback: Callable[[str], None]) -> None:
        """`callback(entry_id)` when Restore is clicked (on a row or a group's job)."""
        self._restore = callback

    def _restore_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        entry_id = str(content.get("id", ""))
        if self._restore is None or entry_id in self._groups:
            return
        if self.has_entry(entry_id) or entry_id in self._item_ids:
            self._restore(entry_id)


class HistoryView:
    """The panel's history: records by id, newest first; Restore puts one into the form."""

    def __init__(
        self,
        on_restore: Callable[[RunRecord], None],
        on_restore_params: Callable[[FluxLoraInput], None] | None = None,
    ) -> None:
        self.records: list[RunRecord] = []
        self.past: list[PastRun] = []
        """Earlier sessions' run folders shown, newest first."""
        self._by_id: dict[str, RunRecord] = {}
        self._past_runs: dict[str, PastRun] = {}
        self._past_jobs: dict[str, PastJob] = {}
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

    def add_past(self, runs: list[PastRun]) -> None:
        """Add earlier sessions' runs (read from the runs folder), one expandable row each."""
        for run in runs:
            if run.entry_id in self._past_runs:
                continue
            self.past.append(run)
            self._past_runs[run.entry_id] = run
            for job in run.jobs:
                self._past_jobs[job.entry_id] = job
            self.list.add_group(
                run.entry_id,
                run.text,
                when=run.when,
                count=len(run.jobs),
                items=functools.partial(_items, run),
                thumbnail=run.thumbnail if run.cover is not None else None,
            )

    def job(self, entry_id: str) -> PastJob | None:
        """An earlier run's job by its entry id."""
        return self._past_jobs.get(entry_id)

    def restore(self, entry_id: str) -> None:
        """Put the run's (or earlier job's) parameters into the form (the Restore button)."""
        record = self._by_id.get(entry_id)
        if record is not None:
            self._on_restore(record)
            return
        past = self._past_jobs.get(entry_id)
        if past is not None and past.params is not None and self._on_restore_params is not None:
            self._on_restore_params(past.params)

    def close(self) -> None:
        """Close the list."""
        self.list.close()


def _items(run: PastRun) -> list[HistoryItem]:
    """An earlier run's jobs as the rows its expansion shows (jobs that no longer validate are
    left out: they cannot be restored)."""
    return [
        HistoryItem(job.entry_id, job.text, job.detail, job.thumbnail if job.files else None)
        for job in run.jobs
        if job.params is not None
    ]
