"""One job of the panel: its status row (text, progress, cancel, log) and its run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..client.protocols import JobClient, JobHandle
from ..client.status import (
    Completed,
    InProgress,
    LogEntry,
    Queued,
    StatusUpdate,
    Waiting,
    describe,
)
from ..errors import JobCancelledError as JobCancelled
from ..pipeline import JobPipeline
from ..schema import FluxImage, FluxLoraInput, FluxLoraOutput
from ..store.records import JobRecord, SavedImage
from ..store.runs import Run
from . import status
from ._widgets import alive, close_tree, esc, muted, shared_layout
from .records import ImageRecord, RunRecord

__all__ = ["Job", "JobRow", "make_thumbnail"]

_STYLE = {
    "submitting": ("info", "#555"),
    "queued": ("info", "#555"),
    "running": ("info", "#0b57d0"),
    "done": ("success", "#137333"),
    "cancelled": ("warning", "#8a6d00"),
    "error": ("danger", "#b00020"),
}
_LOG_LINES = 200


class JobRow:
    """One line per job: label, status, progress and Cancel while it runs; a summary after.

    A finished row drops its progress bar and Cancel button (no dead buttons) and keeps one
    line; its log opens on click. A cancelled row says "Cancelled".
    """

    def __init__(self, number: int, params: FluxLoraInput) -> None:
        prompt = params.prompt if len(params.prompt) <= 28 else params.prompt[:27] + "…"
        self.label = widgets.HTML(
            f'<div style="white-space:nowrap;overflow:hidden;text-overflow:ellipsis" '
            f'title="{esc(params.prompt)}"><b>#{number}</b> {muted(prompt)}</div>',
            layout=shared_layout(max_width="130px", overflow="hidden", flex="0 0 auto"),
        )
        self.status = widgets.HTML(
            layout=shared_layout(flex="1 1 auto", overflow="hidden", margin="0 0 0 6px")
        )
        self.progress = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, layout=shared_layout(width="80px", flex="0 0 auto")
        )
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            tooltip="Cancel this job (fal's cancel call)",
            layout=shared_layout(width="80px", flex="0 0 auto"),
        )
        self.log_button = widgets.ToggleButton(
            description="Log",
            tooltip="Show the job's log lines",
            layout=shared_layout(width="auto", flex="0 0 auto"),
        )
        self.log = widgets.HTML()
        self.line = widgets.HBox(
            [self.label, self.status, self.progress, self.cancel_button],
            layout=shared_layout(width="100%", align_items="center"),
        )
        self.box = widgets.VBox([self.line])
        self.log_button.observe(self._toggle_log, "value")
        self.text = ""
        self.note = ""
        self.state = ""
        self.logs = 0
        self.show(status.SUBMITTING, "submitting")

    def show(self, text: str, state: str, progress: float | None = None) -> None:
        """Set the status line (escaped) and the progress bar."""
        bar_style, colour = _STYLE[state]
        self.text, self.state = text, state
        if state in {"done", "cancelled", "error"}:
            self.note = ""  # nothing stale beneath a finished row
        self._draw(colour)
        if alive(self.progress):
            self.progress.bar_style = bar_style
            if progress is not None:
                self.progress.value = max(0.0, min(1.0, progress))
        if state in {"done", "cancelled", "error"}:
            self._collapse()

    def _draw(self, colour: str | None = None) -> None:
        colour = colour or _STYLE[self.state][1]
        note = f" · {muted(self.note)}" if self.note else ""
        # wraps (never clipped): "Done in 10.4 s (inference 9.8 s)", an error's whole message
        self.status.value = (
            f'<div style="white-space:normal;overflow-wrap:anywhere;line-height:1.3" '
            f'title="{esc(self.text)}"><span style="color:{colour}">{esc(self.text)}</span>'
            f"{note}</div>"
        )

    def _collapse(self) -> None:
        """Drop the progress bar and Cancel: a one-line summary (and Log when there is one)."""
        if not alive(self.cancel_button):
            return
        self.cancel_button.disabled = True
        kept = [self.label, self.status] + ([self.log_button] if self.logs else [])
        self.line.children = tuple(kept)
        self.progress.close()
        self.cancel_button.close()

    @property
    def finished(self) -> bool:
        """True once the row shows a final state."""
        return self.state in {"done", "cancelled", "error"}

    def show_note(self, text: str) -> None:
        """A short note after the status, e.g. what a cancel call answered."""
        self.note = text
        self._draw()

    def show_logs(self, logs: Sequence[LogEntry]) -> None:
        """Keep the last log lines (escaped); they open with the Log button."""
        lines = [f"[{entry.level}] {entry.message}" for entry in logs[-_LOG_LINES:]]
        self.log.value = (
            f"<pre style='margin:0;max-height:160px;overflow:auto'>{esc(chr(10).join(lines))}</pre>"
        )
        if not self.logs and self.log_button not in self.line.children:
            children = list(self.line.children)
            children.insert(2, self.log_button)
            self.line.children = tuple(children)
        self.logs = len(logs)
        self.log_button.description = f"Log ({len(logs)})"

    def _toggle_log(self, change: dict[str, Any]) -> None:
        self.box.children = (self.line, self.log) if change["new"] else (self.line,)

    def close(self) -> None:
        """Close every widget of the row."""
        for part in (self.log_button, self.log, self.progress, self.cancel_button):
            close_tree(part)
        close_tree(self.box)


THUMB_SIDE = 240
"""Longer side of a result thumbnail: a gallery tile is 150–200 CSS px wide."""
THUMB_QUALITY = 70
THUMB_FORMAT = "WEBP"
"""WebP q70 at 240 px: ~10 kB for a photo-like 1024² image (JPEG 256 px q85: ~20 kB), so
≤ 15 kB of saved notebook state per shown image (base64 ×4/3)."""


def make_thumbnail(data: bytes) -> tuple[bytes, int, int]:
    """The thumbnail and (width, height) of an image (CPU work: run it in a thread)."""
    from .. import images

    width, height = images.image_size(data)
    thumb = images.thumbnail(data, THUMB_SIDE, THUMB_QUALITY, THUMB_FORMAT)
    return thumb, width, height


class Job:
    """Runs one input through the job pipeline (`fluxwidget.pipeline`) into the panel's run
    folder, follows its status into the row, and keeps each image's thumbnail (the full image is
    on disk)."""

    def __init__(
        self,
        number: int,
        client: JobClient,
        params: FluxLoraInput,
        *,
        run_folder: Run | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.number = number
        self.client = client
        self.params = params
        self.run_folder = run_folder
        self.row = JobRow(number, params)
        self.row.cancel_button.on_click(lambda _button: self._cancel_clicked())
        self.job: JobRecord | None = None
        self.pipeline: JobPipeline | None = None
        self.record: RunRecord | None = None
        self.reported = False
        self.finished = False
        self._clock = clock
        self._started = clock()
        self._running_since: float | None = None
        self._cancel_wanted = False
        self._cancel_on_submit = False
        self._inference: float | None = None
        self._images: dict[int, ImageRecord] = {}
        self._output: FluxLoraOutput | None = None
        self.cancel_tasks: set[asyncio.Task[str]] = set()

    @property
    def request_id(self) -> str | None:
        """The job's request id once submitted."""
        return self.job.request_id if self.job is not None else None

    @property
    def handle(self) -> JobHandle | None:
        """The request's handle while the job is on its way."""
        if self.pipeline is None or self.job is None:
            return None
        return self.pipeline.handles.get(self.job.job_id)

    async def run(self) -> RunRecord:
        """Submit, follow, fetch the result and the images; every outcome lands in the row."""
        try:
            record = await self._run()
        except JobCancelled:
            self._finish("Cancelled", "cancelled")
            raise
        except asyncio.CancelledError:
            # the task was stopped (the panel closed): the pipeline cancelled it on the server
            self._finish("Stopped; cancelling the job on the server", "cancelled")
            answer = self.job.cancel_answer if self.job is not None else None
            if answer is not None:
                self.row.show_note(status.cancel_text(answer))
            raise
        except Exception as exc:
            self._finish(status.error_text(exc), "error")
            raise
        return record

    def _finish(self, text: str, state: str, progress: float | None = None) -> None:
        self.finished = True
        self.reported = True
        self.row.show(text, state, progress)

    async def _run(self) -> RunRecord:
        if self.run_folder is None:
            self.run_folder = await asyncio.to_thread(Run.create, kind="panel")
        self.pipeline = JobPipeline(
            self.client,
            self.run_folder,
            on_change=self._changed,
            on_image=self._image_saved,
            on_result=self._result_in_hand,
            on_upload=self._upload_progress,
        )
        self.job = self.pipeline.plan(self.params)
        job = await self.pipeline.run(self.job)
        elapsed = self._clock() - self._started
        images = tuple(self._images[index] for index in sorted(self._images))
        output = self._output or FluxLoraOutput(  # fal's own output; else (collected from
            images=[FluxImage(url=image.url or "") for image in job.images],  # URLs) the record's
            seed=job.seed,
            has_nsfw_concepts=list(job.nsfw),
        )
        self.record = RunRecord(
            self.number, self.params, output, images, job.request_id or "", elapsed,
            endpoint=job.endpoint, job=job,
        )  # fmt: skip
        text = status.done_text(
            elapsed,
            job.timings.get("inference", self._inference),
            job.seed,
            len(images),
            sum(image.nsfw for image in images),
        )
        if self._cancel_wanted:
            self.row.show_note("The cancel came too late: the job had already finished.")
        self._finish(text, "done", 1.0)
        return self.record

    def _changed(self, job: JobRecord, update: StatusUpdate | None) -> None:
        if update is not None:
            self._follow(update)
        elif job.detail.startswith("Uploading") and not self.finished:
            self.row.show(job.detail, "submitting")  # local files on their way to fal
        elif job.state == "submitting" and not self.finished:
            self.row.show(status.SUBMITTING, "submitting")
        elif job.state == "fetching":
            self.row.show(job.detail or "Fetching images…", "running", 1.0)
        if job.request_id is not None and self._cancel_on_submit and not self.finished:
            self._cancel_on_submit = False  # a Cancel clicked before the submit came back
            self._spawn_cancel()

    def _upload_progress(self, path: str, sent: int, total: int) -> None:
        """A local file on its way to fal's storage: "Uploading style.safetensors: 40/120 MB"."""
        if not self.finished and total > 0:
            self.row.show(status.upload_text(path, sent, total), "submitting", sent / total)

    def _result_in_hand(self, _job: JobRecord, output: FluxLoraOutput | None) -> None:
        self._output = output

    async def _image_saved(self, job: JobRecord, image: SavedImage, data: bytes) -> None:
        thumb, width, height = await asyncio.to_thread(make_thumbnail, data)
        assert self.run_folder is not None
        self._images[image.index] = ImageRecord(
            image.index, b"", thumb, width, height, image.content_type, image.nsfw,
            path=str(self.run_folder.path / image.file),
        )  # fmt: skip

    def _follow(self, update: StatusUpdate) -> None:
        if isinstance(update, Queued):
            self.row.show(status.queued_text(update.position), "queued", 0.0)
        elif isinstance(update, InProgress):
            now = self._clock()
            if self._running_since is None:
                self._running_since = now
            step = update.step
            progress = step[0] / step[1] if step else None
            self.row.show(status.running_text(now - self._running_since, step), "running", progress)
            if update.logs:
                self.row.show_logs(update.logs)
        elif isinstance(update, Waiting):
            self.row.show(describe(update), self.row.state or "queued")
        elif isinstance(update, Completed):
            self._inference = update.inference_time
            if update.logs:
                self.row.show_logs(update.logs)

    async def cancel(self) -> str:
        """Ask fal to cancel; the answer is written under the status line and returned."""
        submitted = self.job is not None and self.job.request_id is not None
        if not submitted and self.finished:
            self.row.show_note("Nothing to cancel: the job was never submitted")
            return "NOT_SUBMITTED"
        if not submitted or self.pipeline is None or self.job is None:
            self._cancel_wanted = self._cancel_on_submit = True
            self.row.show_note("Cancel requested — sent as soon as the job is submitted")
            return "PENDING_SUBMIT"
        self._cancel_wanted = not self.finished
        try:
            outcome = await self.pipeline.cancel(self.job)
        except Exception as exc:
            self.row.show_note("Cancel failed — " + status.error_text(exc))
            raise
        self.row.show_note(status.cancel_text(outcome))
        return outcome

    def _cancel_clicked(self) -> None:
        self._spawn_cancel()

    def _spawn_cancel(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.row.show_note("Cancel needs a running event loop (the kernel's)")
            return
        task = loop.create_task(self.cancel())
        self.cancel_tasks.add(task)
        task.add_done_callback(self._cancel_done)

    def _cancel_done(self, task: asyncio.Task[str]) -> None:
        self.cancel_tasks.discard(task)
        if not task.cancelled():
            task.exception()  # already written into the row by cancel()
