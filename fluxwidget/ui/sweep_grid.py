"""The live sweep grid as ONE widget: labelled X/Y rows and columns, one grid per Z value.

Each cell shows its state while the sweep runs (waiting, queued #N, running k/n, done, error,
cancelled) and its thumbnail as soon as it arrives; each thumbnail is sent to the browser once.
A click on a cell shows its parameters, seed, request id and timings, and "Open in panel" calls
the `on_open` callback with the cell id. In the details a cell is rated (stars, pick/reject, a
note; keys 1–5, 0 to clear, p/x, arrows for the next/previous cell): the `on_rate` callback
stores it and `set_cell_rating` shows it. `finish()` writes the full state (saved notebooks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import traitlets

from ._thumbs import ThumbnailWidget, static_text

__all__ = ["CELL_STATES", "SweepGrid"]

CELL_STATES = ("waiting", "queued", "running", "done", "error", "cancelled")
"""The states a cell can show (``text`` says more, e.g. "queued #3", "running 12/28")."""


class SweepGrid(ThumbnailWidget):
    """A labelled grid of sweep cells in one widget model."""

    _esm = static_text("thumbs.js") + static_text("sweep_grid.js")
    _css = static_text("thumbs.css") + static_text("sweep_grid.css")
    axes = traitlets.Dict().tag(sync=True)
    legend = traitlets.Dict().tag(sync=True)
    finished = traitlets.Bool(False).tag(sync=True)
    _snapshot_keys = ("entries", "thumbs", "finished")

    def __init__(
        self,
        x_label: str,
        x_values: Sequence[str],
        y_label: str | None = None,
        y_values: Sequence[str] | None = None,
        z_label: str | None = None,
        z_values: Sequence[str] | None = None,
        legend: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        axes = {
            "x_label": str(x_label),
            "x_values": [str(v) for v in x_values],
            "y_label": "" if y_label is None else str(y_label),
            "y_values": [str(v) for v in (y_values or [])],
            "z_label": "" if z_label is None else str(z_label),
            "z_values": [str(v) for v in (z_values or [])],
        }
        super().__init__(
            axes=axes, legend={str(k): str(v) for k, v in (legend or {}).items()}, **kwargs
        )
        self._open: Callable[[str], None] | None = None
        self._rate: Callable[[str, int | None, str | None, str], None] | None = None
        self._on("open", self._open_asked)
        self._on("rate", self._rate_asked)

    def set_cell_state(
        self, cell_id: str, coords: tuple[int, int, int], state: str, text: str = ""
    ) -> None:
        """Show a cell's state (one of CELL_STATES) and a short text (e.g. "running 3/28")."""
        if state not in CELL_STATES:
            raise ValueError(f"state must be one of {', '.join(CELL_STATES)}, not {state!r}")
        x, y, z = (int(c) for c in coords)
        fields = {"state": state, "text": str(text) or state}
        if self.has_entry(cell_id):
            self._update_entry(cell_id, fields)
        else:
            self._add_entry({"id": str(cell_id), "x": x, "y": y, "z": z, **fields})

    def set_cell_image(self, cell_id: str, thumbnail: bytes, info: Mapping[str, str]) -> None:
        """Give a cell its thumbnail and details (parameters, seed, request id, timings)."""
        details = {str(k): str(v) for k, v in info.items()}
        if not self.has_entry(cell_id):
            raise KeyError(f"unknown cell {cell_id!r}: set its state first (it holds its coords)")
        self._update_entry(cell_id, {"info": details}, thumbnail)

    def set_cell_rating(
        self, cell_id: str, stars: int | None, verdict: str | None = None, note: str = ""
    ) -> None:
        """Show a cell's rating (stars 1–5 or None, "pick"/"reject"/None, a note)."""
        if not self.has_entry(cell_id):
            raise KeyError(f"unknown cell {cell_id!r}")
        fields = {"stars": int(stars or 0), "verdict": verdict or "", "note": note or ""}
        self._update_entry(cell_id, fields)

    def on_rate(self, callback: Callable[[str, int | None, str | None, str], None]) -> None:
        """`callback(cell_id, stars, verdict, note)` when a cell is rated in the browser."""
        self._rate = callback

    def _rate_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        cell_id = str(content.get("id", ""))
        if self._rate is None or not self.has_entry(cell_id):
            return
        stars = content.get("stars")
        verdict = content.get("verdict")
        note = content.get("note")
        self._rate(
            cell_id,
            int(stars)
            if isinstance(stars, int) and not isinstance(stars, bool) and stars
            else None,
            str(verdict) if verdict in ("pick", "reject") else None,
            str(note) if isinstance(note, str) else "",
        )

    def on_open(self, callback: Callable[[str], None]) -> None:
        """`callback(cell_id)` when "Open in panel" is clicked on a cell."""
        self._open = callback

    def finish(self) -> None:
        """The sweep ended: write the full state (a saved notebook shows every cell).

        With no browser model (a notebook executed headless, e.g. by nbclient, which saves only
        what the kernel sent), the full state is sent once now, so the saved notebook still
        shows every thumbnail; a browser already has it from the per-cell messages."""
        self._flush_state()
        with self._lock_property(finished=True):
            self.finished = True
        self._state_changed(now=True)
        self.send({"kind": "finished"}, [])

    def _open_asked(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        cell_id = str(content.get("id", ""))
        if self._open is not None and self.has_entry(cell_id):
            self._open(cell_id)
