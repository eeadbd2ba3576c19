"""A sweep's live view: a status line, its controls and the `SweepGrid` (one widget model).

The view listens to a `SweepRun`: every cell change updates its cell, every saved image becomes
a thumbnail (made off the loop) sent once to the browser. "Open in panel" puts a cell's full
input, with the seed it used, into the panel that asked for it (or the newest `FluxPanel`).
Cells rated in the grid are stored in the run folder's ``ratings.jsonl`` (`store.ratings`);
under the grid, the per-axis win rates, "Open the winner in the panel" and a blind A/B test.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .. import images
from ..client.status import StatusUpdate
from ..errors import FluxwidgetError
from ..store.ratings import Ratings
from ..store.records import JobRecord, SavedImage
from ..sweeps.ranges import format_value
from ..sweeps.results import load_run
from ._widgets import error_html, esc, muted
from .blind_ab import BlindAB
from .sweep_grid import SweepGrid

if TYPE_CHECKING:
    from ..sweeps.axes import Axis
    from ..sweeps.run import SweepRun

__all__ = ["GRID_THUMBNAIL_SIDE", "SweepView", "cell_state"]

GRID_THUMBNAIL_SIDE = 136
"""Longer side of a grid thumbnail (a cell is 136 CSS px wide)."""
GRID_THUMBNAIL = (GRID_THUMBNAIL_SIDE, 45, "WEBP")
"""Side, quality, format: WebP q45, ~4 kB per cell (a notebook of sweeps stays ≤ 400 kB)."""

SUMMARY_IN_THREAD_ABOVE = 48
"""Cells above which the ranking under the grid is worked out in a thread (it takes longer)."""

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
        confirm = self.buttons["Confirm and start"]
        confirm.button_style = "warning"
        confirm.layout = widgets.Layout(width="auto", display="none")  # shown while pending
        self.buttons["Confirm and start"].on_click(lambda _b: self._act(run.confirm))
        self.buttons["Cancel remaining"].on_click(lambda _b: self._act(run.cancel_remaining))
        self.buttons["Cancel all"].on_click(lambda _b: self._act(run.cancel_all))
        self.buttons["Retry failed"].on_click(lambda _b: self._act(run.retry_failed))
        self.controls = widgets.HBox(list(self.buttons.values()), layout=layout)
        self.ratings = Ratings(run.folder)
        self.wins = widgets.HTML(layout=layout)
        self.winner_button = widgets.Button(
            description="Open the winner in the panel",
            tooltip="Put the best-ranked image's parameters (and seed) into the panel",
            layout=layout,
        )
        self.winner_button.on_click(lambda _b: self.open_winner())
        self.compare_button = widgets.Button(
            description="Blind A/B", tooltip="Compare two images at a time, parameters hidden"
        )
        self.compare_button.on_click(lambda _b: self.compare())
        # under the grid on screen (flex order), while the grid stays the view's last child
        below = widgets.Layout(width="auto", order="1")
        self.compare_area = widgets.VBox(layout=widgets.Layout(width="auto", order="2"))
        self.winner_bar = widgets.VBox(
            [self.wins, widgets.HBox([self.winner_button, self.compare_button])], layout=below
        )
        self.widget = widgets.VBox(
            [self.status, self.controls, self.winner_bar, self.compare_area, self.grid],
            layout=layout,
        )
        for record in run.records:
            self._cell_changed(record, None)
            if record.state == "done" and record.images:
                self._spawn(self._show_saved(record))
        run.runner.subscribe(on_cell=self._cell_changed, on_image=self._image_saved)
        run.on_status(self._status_changed)
        self.grid.on_open(self._open)
        self.grid.on_rate(self._rated)
        for record in run.records:
            self._show_rating(record.job_id)
        self._status_changed(run.status)
        self.refresh_win_rates()

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
        pending = not run.confirmed  # a sweep above the threshold, waiting for the click
        confirm = self.buttons["Confirm and start"]
        confirm.disabled = not pending
        confirm.layout.display = None if pending else "none"  # only while a confirmation waits
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

    # --- pick the winner --------------------------------------------------------------------

    def _show_rating(self, cell_id: str) -> None:
        rating = self.ratings.rating(cell_id, 0)
        if rating is not None and self.grid.has_entry(cell_id):
            self.grid.set_cell_rating(cell_id, rating.stars, rating.verdict, rating.note)

    def _rated(self, cell_id: str, stars: int | None, verdict: str | None, note: str) -> None:
        """A cell rated in the grid: stored in the run folder first, then shown."""
        try:
            rating = self.ratings.rate(
                cell_id,
                0,
                stars=stars,
                verdict=verdict,  # type: ignore[arg-type]
                note=note,
            )
        except FluxwidgetError as exc:  # RunFolderBusy: a sweep writes it in another process
            self.status.value = error_html(f"Not saved: {exc}")
            return
        self.grid.set_cell_rating(cell_id, rating.stars, rating.verdict, rating.note)
        self.refresh_win_rates()

    def rate(
        self, cell_id: str, stars: int | None = None, verdict: str | None = None, note: str = ""
    ) -> None:
        """Rate a cell's image as the grid does (stored in the run folder)."""
        self._rated(cell_id, stars, verdict, note)

    def refresh_win_rates(self) -> None:
        """Show the per-axis win rates and the current winner under the grid (worked out in a
        thread for a big sweep, so rating stays quick)."""
        if len(self.run.plan.cells) > SUMMARY_IN_THREAD_ABOVE:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._spawn(self._refresh_in_thread())
                return
        self._show_summary(*self._winner_summary())

    async def _refresh_in_thread(self) -> None:
        try:
            summary = await asyncio.to_thread(self._winner_summary)
        except Exception as exc:  # shown, never lost in a task (a sweep still adding cells)
            summary = (error_html(f"{type(exc).__name__}: {exc}"), False)
        self._show_summary(*summary)

    def _show_summary(self, text: str, has_winner: bool) -> None:
        self.wins.value = text
        self.winner_button.disabled = not has_winner

    def _winner_summary(self) -> tuple[str, bool]:
        """The HTML under the grid (winner so far, win rates) and whether there is a winner."""
        ratings = Ratings(self.run.folder)
        if not ratings.state.ratings and not ratings.state.votes:
            text = "Rate cells (click one, then 1–5 / p / x) or run a blind A/B test to pick "
            return muted(text + "the winner."), False
        try:
            results = load_run(self.run.runner.run)
        except FluxwidgetError as exc:
            return error_html(str(exc)), False
        winner = results.winner()
        head = ""
        if winner is not None:
            values = ", ".join(f"{k}={format_value(v)}" for k, v in winner.axes.items())
            head = f"<b>Winner so far:</b> {esc(winner.job_id)} ({esc(values)})"
        rows = []
        for axis, rates in results.win_rates().items():
            cells = []
            for rate in sorted(rates, key=lambda r: (not r.enough, -(r.rate or 0.0))):
                if rate.enough and rate.rate is not None:
                    text = f"<b>{esc(rate.value)}</b> {100 * rate.rate:.0f} % ± "
                    text += f"{100 * rate.margin:.0f} % ({rate.votes})"
                else:
                    text = f"<b>{esc(rate.value)}</b> not enough votes yet ({rate.votes})"
                cells.append(text)
            rows.append(f"<tr><th>{esc(axis)}</th><td>{' · '.join(cells)}</td></tr>")
        table = (
            '<table class="fw-win-rates" style="line-height:1.5">'
            "<tr><th>win rates</th><td>blind votes between different values, "
            "95 % interval (votes)</td></tr>" + "".join(rows) + "</table>"
            if rows
            else ""
        )
        return f'<div style="line-height:1.5">{head}{table}</div>', winner is not None

    def open_winner(self) -> None:
        """Open the best-ranked image's parameters in the panel."""
        winner = load_run(self.run.runner.run).winner()
        if winner is None:
            self.status.value = error_html("Nothing is rated or voted on yet.")
            return
        self._open(winner.job_id)

    def compare(self) -> Any:
        """Start a blind A/B test of this sweep's images under the grid; returns its widget."""
        ab = BlindAB(self.run.folder, on_vote=lambda _vote: self.refresh_win_rates())
        self.compare_area.children = [ab]
        return ab

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
