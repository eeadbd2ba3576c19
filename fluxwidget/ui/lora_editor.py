"""The LoRA list editor: rows of path, scale (slider + text), force, remove; an add button."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..schema import LORA_SCALE_UI_RANGE, FieldProblem, LoraWeight
from ._widgets import close_tree, error_html, lighten, shared_layout

__all__ = ["LoraEditor", "LoraRow"]

_PATH = LoraWeight.model_fields["path"]
_SCALE = LoraWeight.model_fields["scale"]
_FORCE = LoraWeight.model_fields["force"]


class LoraRow:
    """One LoRA: path, scale slider and text, force, remove, and an inline error."""

    def __init__(self, path: str = "", scale: float | None = None, force: bool | None = None):
        value = float(_SCALE.default if scale is None else scale)
        low, high = LORA_SCALE_UI_RANGE
        style = {"description_width": "40px"}
        self.path = widgets.Text(
            value=path,
            placeholder="https://…/lora.safetensors, owner/repo or a local file",
            description="path",
            tooltip=_PATH.description,
            style=style,
            layout=shared_layout(width="416px"),
        )
        self.scale = widgets.FloatSlider(
            value=min(max(value, low), high),
            min=low,
            max=high,
            step=0.05,
            readout=False,
            description="scale",
            tooltip=_SCALE.description,
            continuous_update=True,
            style=style,
            layout=shared_layout(width="200px"),
        )
        self.scale_text = widgets.FloatText(
            value=value,
            tooltip=f"{_SCALE.description} (the panel allows {low:g}–{high:g})",
            layout=shared_layout(width="64px"),
        )
        self.force = widgets.Checkbox(
            value=bool(force),
            description="force",
            tooltip=_FORCE.description,
            indent=False,
            layout=shared_layout(width="70px"),
        )
        self.remove = widgets.Button(
            description="✕", tooltip="Remove this LoRA", layout=shared_layout(width="36px")
        )
        self.error = widgets.HTML()
        self.scale.observe(self._slid, "value")
        self.scale_text.observe(self._typed, "value")
        self.box = widgets.VBox(
            [
                self.path,
                widgets.HBox([self.scale, self.scale_text, self.force, self.remove]),
                self.error,
            ],
            layout=shared_layout(border_bottom="1px solid #eee", margin="0 0 4px 0"),
        )

    def _slid(self, change: dict[str, Any]) -> None:
        if self.scale_text.value != change["new"]:
            self.scale_text.value = change["new"]

    def _typed(self, change: dict[str, Any]) -> None:
        low, high = LORA_SCALE_UI_RANGE
        if low <= change["new"] <= high and self.scale.value != change["new"]:
            self.scale.value = change["new"]

    def raw(self) -> dict[str, Any]:
        """The row as a dict, unvalidated (force left out unless ticked)."""
        row: dict[str, Any] = {"path": self.path.value, "scale": self.scale_text.value}
        if self.force.value:
            row["force"] = True
        return row

    def set_scale(self, value: float) -> None:
        """Set the scale (a value outside the panel's range is shown, then named as an error)."""
        self.scale_text.value = value


class LoraEditor:
    """Edit `loras`: a list of rows, each with its own inline error."""

    def __init__(self) -> None:
        self.rows: list[LoraRow] = []
        self._callbacks: list[Callable[[], None]] = []
        self.add_button = widgets.Button(
            description="Add LoRA",
            icon="plus",
            tooltip="Add a LoRA row",
            layout=shared_layout(width="110px"),
        )
        self.add_button.on_click(lambda _button: self.add())
        self.rows_box = widgets.VBox()
        self.box = widgets.VBox([self.rows_box, self.add_button])

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever a row is added, removed or edited."""
        self._callbacks.append(callback)

    def _changed(self, _change: Any = None) -> None:
        for callback in self._callbacks:
            callback()

    def add(
        self,
        path: str = "",
        scale: float | None = None,
        force: bool | None = None,
        *,
        notify: bool = True,
    ) -> LoraRow:
        """Append a row and return it."""
        row = LoraRow(path, scale, force)
        row.path.observe(self._changed, "value")
        row.scale_text.observe(self._changed, "value")
        row.force.observe(self._changed, "value")
        row.remove.on_click(lambda _button: self.remove(row))
        lighten(row.box)
        self.rows.append(row)
        self.rows_box.children = (*self.rows_box.children, row.box)
        if notify:
            self._changed()
        return row

    def remove(self, row: LoraRow, *, notify: bool = True) -> None:
        """Drop a row and close its widgets."""
        self.rows.remove(row)
        self.rows_box.children = tuple(r.box for r in self.rows)
        close_tree(row.box)
        if notify:
            self._changed()

    def raw(self) -> list[dict[str, Any]]:
        """All rows as dicts, unvalidated."""
        return [row.raw() for row in self.rows]

    def range_problems(self) -> list[FieldProblem]:
        """Scales outside the panel's range (the API takes any finite number)."""
        low, high = LORA_SCALE_UI_RANGE
        return [
            FieldProblem(
                f"loras[{index}].scale",
                row.scale_text.value,
                f"{row.scale_text.value:g} is outside the panel's range {low:g}–{high:g}",
            )
            for index, row in enumerate(self.rows)
            if not low <= row.scale_text.value <= high
        ]

    def set_loras(self, loras: Sequence[LoraWeight]) -> None:
        """Replace all rows (reusing existing ones) without notifying per row."""
        while len(self.rows) > len(loras):
            self.remove(self.rows[-1], notify=False)
        while len(self.rows) < len(loras):
            self.add(notify=False)
        for row, lora in zip(self.rows, loras, strict=True):
            row.path.value = lora.path
            row.set_scale(lora.scale)
            row.force.value = bool(lora.force)

    def show_problems(self, problems: Sequence[FieldProblem]) -> None:
        """Show each ``loras[i]...`` problem next to row i; clear the others."""
        by_row: dict[int, list[str]] = {}
        for problem in problems:
            index = _row_index(problem.field)
            if index is not None:
                leaf = problem.field.rsplit(".", 1)[-1]
                by_row.setdefault(index, []).append(f"{leaf}: {problem.message}")
        for index, row in enumerate(self.rows):
            messages = by_row.get(index, [])
            row.error.value = error_html("; ".join(messages)) if messages else ""

    def close(self) -> None:
        """Close every widget of the editor."""
        close_tree(self.box)


def _row_index(field: str) -> int | None:
    if not field.startswith("loras["):
        return None
    try:
        return int(field[len("loras[") :].split("]", 1)[0])
    except ValueError:
        return None
