"""A sweep's live view: a status line, its controls and the `SweepGrid` (one widget model).

The view listens to a `SweepRun`: every cell change updates its cell, every saved image becomes
a thumbnail (made off the loop) sent once to the browser. "Open in panel" puts a cell's full
input, with the seed it used, into the panel that asked for it (or the newest `FluxPanel`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .. import images
from ..client.status import StatusUpdate
from ..store.records import JobRecord, SavedImage
from ..sweeps.ranges import format_value
from ._widgets import error_html, esc, muted
from .sweep_grid import SweepGrid

if TYPE_CHECKING:
    from ..sweeps.axes import Axis
    from ..sweeps.run import SweepRun

__all__ = ["GRID_THUMBNAIL_SIDE", "SweepView", "cell_state"]

GRID_THUMBNAIL_SIDE = 136
"""Longer side of a grid thumbnail (a cell is 136 CSS px wide)."""
GRID_THUMBNAIL = (GRID_THUMBNAIL_SIDE, 55, "WEBP")
"""Side, quality, format: WebP q55, ~5 kB per cell (a notebook of sweeps stays ≤ 400 kB)."""

_OPENERS: list[weakref.ReferenceType[Any]] = []


def register_opener(target: Any) -> None:
    """Make `target` (a FluxPanel: has ``restore_input(dict)``) the default "Open in panel"."""
    _OPENERS.append(weakref.ref(target))


def _latest_opener() -> Any:
    while _OPENERS:
        target = _OPENERS[-1]()
        if target is not None and not getattr(target, "closed", False):
            return target
        _OPENERS.pop()
    return None


def _labels(axis: Axis | None) -> list[str] | None:
    return [format_value(value) for value in axis.values] if axis is not None else None


def cell_state(record: JobRecord) -> tuple[str, str]:
    """The grid's (state, text) for a cell's record."""
    state = record.state
    if state == "done":
        return "done", f"seed {record.seed}" if record.seed is not None else "done"
    if state in ("error", "unknown"):
        return "error", (record.error or "failed")[:80]
    if state == "cancelled":
        return "cancelled", record.detail or "cancelled"
    if state == "pending":
        return "waiting", "waiting"
    if state == "queued":
        return "queued", record.detail or "queued"
    return "running", record.detail or state


def cell_info(record: JobRecord) -> dict[str, str]:
    """What a click on a cell shows: axis values, seed, request id, timings, full input."""
    info = {f"{key}": format_value(value) for key, value in record.axes.items()}
    info["seed"] = "random" if record.seed is None else str(record.seed)
    info["request id"] = record.request_id or "—"
    total = record.timings.get("total")
    if total is not None:
        info["time"] = f"{total:.1f} s"
    inference = record.timings.get("inference")
    if inference is not None:
        info["inference"] = f"{inference:.1f} s"
    if record.billable_units is not None:
        info["billed units"] = f"{record.billable_units:g}"
    if any(record.nsfw):
        info["NSFW"] = "flagged by the safety checker"
    for key, value in record.input.items():
        if key not in ("prompt",):
            info.setdefault(f"input.{key}", str(value))
    info["prompt"] = str(record.input.get("prompt", ""))
    if record.images:
        info["file"] = record.images[0].file
    return info


class SweepView:
    """The widgets of one sweep: status, Confirm / Cancel remaining / Cancel all / Retry, grid."""

    def __init__(self, run: SweepRun, *, opener: Callable[[dict[str, Any]], None] | None = None):
        self.run = run
        self._opener = opener
        self._tasks: set[asyncio.Task[Any]] = set()
        plan = run.plan
        x, y, z = plan.axes
        if plan.mode == "zip":  # paired values: one row of cells, each labelled by its values
            named = [axis.label for axis in plan.axes if axis is not None]
            self.grid = SweepGrid(
                " / ".join(named) or "cell",
                [cell.title or cell.id for cell in plan.cells],
                legend=plan.legend(),
            )
        else:
            self.grid = SweepGrid(
                x.label if x is not None else "",
                _labels(x) or [""],
                y.label if y is not None else None,
                _labels(y),
                z.label if z is not None else None,
                _labels(z),
                legend=plan.legend(),
            )
        layout = widgets.Layout(width="auto")
        self.status = widgets.HTML(layout=layout)
        self.buttons = {
            name: widgets.Button(description=name, layout=layout)
            for name in ("Confirm and start", "Cancel remaining", "Cancel all", "Retry failed")
        }
        self.buttons["Confirm and start"].button_style = "warning"
        self.buttons["Confirm and start"].on_click(lambda _b: self._act(run.confirm))
        self.buttons["Cancel remaining"].on_click(lambda _b: self._act(run.cancel_remaining))
        self.buttons["Cancel all"].on_click(lambda _b: self._act(run.cancel_all))
        self.buttons["Retry failed"].on_click(lambda _b: self._act(run.retry_failed))
        self.controls = widgets.HBox(list(self.buttons.values()), layout=layout)
        self.widget = widgets.VBox([self.status, self.controls, self.grid], layout=layout)
        for record in run.records:
            self._cell_changed(record, None)
            if record.state == "done" and record.images:
                self._spawn(self._show_saved(record))
        run.runner.subscribe(on_cell=self._cell_changed, on_image=self._image_saved)
        run.on_status(self._status_changed)
        self.grid.on_open(self._open)
        self._status_changed(run.status)

    # --- updates ----------------------------------------------------------------------------

    def _cell_changed(self, record: JobRecord, _update: StatusUpdate | None) -> None:
        state, text = cell_state(record)
        coords = tuple(record.coords or (0, 0, 0))
        self.grid.set_cell_state(record.job_id, (coords[0], coords[1], coords[2]), state, text)

    async def _image_saved(self, record: JobRecord, image: SavedImage, data: bytes) -> None:
        if image.index != 0:
            return  # a cell shows its first image; every image is in the run folder
        thumb = await asyncio.to_thread(images.thumbnail, data, *GRID_THUMBNAIL)
        self.grid.set_cell_image(record.job_id, thumb, cell_info(record))

    async def _show_saved(self, record: JobRecord) -> None:
        """A cell already done (a resumed sweep): its thumbnail from the file on disk."""
        path = self.run.folder / record.images[0].file
        try:
            data = await asyncio.to_thread(path.read_bytes)
            thumb = await asyncio.to_thread(images.thumbnail, data, *GRID_THUMBNAIL)
        except (OSError, ValueError):
            return
        self.grid.set_cell_image(record.job_id, thumb, cell_info(record))

    def _status_changed(self, text: str) -> None:
        run = self.run
        failed = "Failed" in text or "Stopped" in text
        self.status.value = error_html(text) if failed else muted(esc(text))
        running = run._task is not None and not run.done
        self.buttons["Confirm and start"].disabled = run.confirmed
        self.buttons["Cancel remaining"].disabled = not running
        self.buttons["Cancel all"].disabled = not running
        self.buttons["Retry failed"].disabled = running or not any(
            r.state in ("error", "cancelled") for r in run.records
        )
        if run.done and run.error is None:
            self.grid.finish()

    # --- actions ----------------------------------------------------------------------------

    def _act(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:  # shown, never lost in a callback
            self.status.value = error_html(f"{type(exc).__name__}: {exc}")
        self._status_changed(self.run.status)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open(self, cell_id: str) -> None:
        record = self.run.runner.records.get(cell_id)
        if record is None:
            return
        target = self._opener
        if target is None:
            panel = _latest_opener()
            target = getattr(panel, "restore_input", None)
        if target is None:
            self.status.value = error_html("No FluxPanel is open: run FluxPanel() in a cell.")
            return
        target(record.reuse_input())
        self.status.value = muted(esc(f"Opened {cell_id} in the panel (seed {record.seed})."))
